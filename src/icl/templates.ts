// StaICC-Diag's prompt variations (Cho & Inoue 2025; ../shared/docs/abft-method.md §5) and the
// special demonstration samplings of the analyses:
//
// - template consistency: 9 templates from an L9(3^4) orthogonal array over 4 factors with 3 levels
//   each: instruction, input prefix, label prefix, separator (the text after each demonstration's
//   label). Row [0,0,0,0] is the task's standard template. The factor levels of the built-in tasks
//   are StaICC's (its datasets' `alternate_template`), written in this project's convention: label
//   prefixes without their trailing space (the template adds " " + label word). Each of the first
//   `queries` (100) test queries gets one fixed demonstration set, and is asked under all 9
//   templates; prompts are query-major (prompt q * 9 + t).
// - demonstration consistency: the first `queries` (128) test queries, each with `sets` (8)
//   independently sampled demonstration sets, the standard template (query-major).
// - unseen label: every query's k demonstrations all carry labels other than the query's (the paper's
//   Appendix A.4), drawn from the demonstration pool, distinct within a set.
// User tasks get their spec's "templates" factors, or generic ones built around their own prefixes.
import { Rng } from "../util/random.ts";
import type { TaskData, TaskSpec, TemplateFactors, BuiltinTaskName } from "./tasks.ts";
import { deriveSeed, sampleDistinct, sampleTestPrompts, SplitError, DEFAULT_SIZES, type PromptSpec, type TaskSplit } from "./splits.ts";
import type { BuiltPrompt, PromptBuilder, PromptTemplate } from "./prompts.ts";

/** L9(3^4): 9 runs, 4 factors, 3 levels; every pair of columns holds each level pair exactly once. */
export const L9_ORTHOGONAL: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 0],
  [0, 1, 1, 1],
  [0, 2, 2, 2],
  [1, 0, 1, 2],
  [1, 1, 2, 0],
  [1, 2, 0, 1],
  [2, 0, 2, 1],
  [2, 1, 0, 2],
  [2, 2, 1, 0],
];

const SEPARATORS = ["\n", " ", "\t"] as const;
const MOVIE = "How would you describe the overall feeling of the movie based on this sentence? ";

function factors(instruction: [string, string], inPrefix: [string, string, string], labelPrefix: string): TemplateFactors {
  return {
    instruction: ["", ...instruction],
    inPrefix,
    labelPrefix: [labelPrefix, "label:", "Label:"],
    separator: SEPARATORS,
  };
}

/** StaICC-Diag's factor levels for the built-in tasks (level 0 = the task's own template). */
export const STAICC_TEMPLATE_FACTORS: Readonly<Record<BuiltinTaskName, TemplateFactors>> = {
  sst2: factors([MOVIE, "Please classify the sentiment of the following sentence. "], ["sentence: ", "text: ", "review: "], "sentiment:"),
  mr: factors([MOVIE, "Please classify the sentiment of the following sentence. "], ["review: ", "text: ", "sentence: "], "sentiment:"),
  fp: factors(
    ["What is the attitude towards the financial news in this sentence? ", "What is the emotional response to the financial news in this sentence? "],
    ["sentence: ", "text: ", "news: "],
    "sentiment:",
  ),
  sst5: factors([MOVIE, "What mood does this sentence convey about the movie? "], ["sentence: ", "text: ", "review: "], "sentiment:"),
  trec: factors(["What is the topic of the question? ", "What is the primary focus of this question? "], ["question: ", "text: ", "sentence: "], "target:"),
  subj: factors(
    ["Does this sentence reflect a personal opinion? ", "Is this sentence expressing a personal opinion or stating a fact? "],
    ["review: ", "text: ", "sentence: "],
    "subjectiveness:",
  ),
  tee: factors(["What feeling does this sentence convey? ", "What emotion does this sentence express? "], ["tweet: ", "text: ", "sentence: "], "emotion:"),
  teh: factors(["Does this sentence contain hate speech? ", "Is this sentence an example of hate speech? "], ["tweet: ", "text: ", "sentence: "], "hate speech:"),
};

/** The factor levels of a task: its spec's, StaICC's for a built-in task, else generic ones. */
export function templateFactors(task: TaskSpec): TemplateFactors {
  if (task.templateFactors) return task.templateFactors;
  if (task.builtin) {
    const f = STAICC_TEMPLATE_FACTORS[task.name as BuiltinTaskName];
    if (f && f.inPrefix[0] === task.inPrefix && f.labelPrefix[0] === task.labelPrefix) return f;
  }
  const others = (own: string, alts: string[]) => [own, ...alts.filter((a) => a !== own).slice(0, 2)];
  return {
    instruction: ["", "Please classify the following text. ", "What is the label of this text? "],
    inPrefix: others(task.inPrefix, ["text: ", "input: ", "sentence: "]),
    labelPrefix: others(task.labelPrefix, ["label:", "Label:", "answer:"]),
    separator: SEPARATORS,
  };
}

/** The 9 templates of template consistency, in L9 row order (template 0 is the standard one). */
export function consistencyTemplates(task: TaskSpec): PromptTemplate[] {
  const f = templateFactors(task);
  return L9_ORTHOGONAL.map(([a, b, c, d]) => ({
    instruction: f.instruction[a],
    inPrefix: f.inPrefix[b],
    labelPrefix: f.labelPrefix[c],
    separator: f.separator[d],
  }));
}

// ---------------------------------------------------------------------------------------------
// Samplings

export interface ConsistencyOptions {
  /** number of test queries used (template: 100, demonstration: 128) */
  queries?: number;
  k?: number;
  /** default: the split's seed */
  seed?: number;
}

function firstQueries(split: TaskSplit, n: number, what: string): number[] {
  if (n > split.testQueries.length) {
    throw new SplitError(`${what} needs ${n} test queries, the split has ${split.testQueries.length}`);
  }
  return split.testQueries.slice(0, n);
}

/** Template consistency: one fixed demonstration set for each of the first `queries` (100) test queries. */
export function sampleTemplateConsistency(split: TaskSplit, opts: ConsistencyOptions = {}): PromptSpec[] {
  const queries = firstQueries(split, opts.queries ?? 100, "template consistency");
  const seed = deriveSeed(opts.seed ?? split.seed, "template-consistency");
  return sampleTestPrompts(split, { k: opts.k ?? DEFAULT_SIZES.k, demoSets: 1, seed, queries });
}

/** Template consistency prompts: query-major, 9 per query (prompt q * 9 + t uses template t). */
export function buildTemplateConsistencyPrompts(
  builder: PromptBuilder,
  data: TaskData,
  split: TaskSplit,
  opts: ConsistencyOptions = {},
): { specs: PromptSpec[]; templates: PromptTemplate[]; prompts: BuiltPrompt[] } {
  const specs = sampleTemplateConsistency(split, opts);
  const templates = consistencyTemplates(data.task);
  const builders = templates.map((t) => builder.withTemplate(t));
  const prompts: BuiltPrompt[] = [];
  for (const s of specs) for (const b of builders) prompts.push(b.buildSpec(data, s));
  return { specs, templates, prompts };
}

/** Demonstration consistency: the first `queries` (128) test queries × `sets` (8) demonstration sets, query-major. */
export function sampleDemoConsistency(split: TaskSplit, opts: ConsistencyOptions & { sets?: number } = {}): PromptSpec[] {
  const queries = firstQueries(split, opts.queries ?? 128, "demonstration consistency");
  const seed = deriveSeed(opts.seed ?? split.seed, "demo-consistency");
  return sampleTestPrompts(split, { k: opts.k ?? DEFAULT_SIZES.k, demoSets: opts.sets ?? 8, seed, queries });
}

/**
 * Unseen label: for every test query, `demoSets` sets of k distinct demonstration-pool examples
 * whose labels all differ from the query's (query-major).
 */
export function sampleUnseenLabelPrompts(
  data: TaskData,
  split: TaskSplit,
  opts: { k?: number; demoSets?: number; seed?: number; queries?: number[] } = {},
): PromptSpec[] {
  const k = opts.k ?? DEFAULT_SIZES.k;
  const sets = opts.demoSets ?? DEFAULT_SIZES.demoSets;
  const nLabels = data.task.labelWords.length;
  // demonstration-pool examples of every label but l, for each l
  const others: number[][] = Array.from({ length: nLabels }, (_, l) => split.demoPool.filter((i) => data.examples[i].label !== l));
  const rng = new Rng(deriveSeed(opts.seed ?? split.seed, "unseen-label"));
  const out: PromptSpec[] = [];
  for (const q of opts.queries ?? split.testQueries) {
    const pool = others[data.examples[q].label];
    if (pool.length < k) {
      throw new SplitError(
        `unseen label: a query labelled "${data.task.labelWords[data.examples[q].label]}" needs ${k} demonstrations of other labels, ` +
          `the demonstration pool has ${pool.length}`,
      );
    }
    for (let s = 0; s < sets; s++) out.push({ demos: sampleDistinct(rng, pool.length, k).map((i) => pool[i]), query: q });
  }
  return out;
}
