// Prompt building: the template text and ids against HF tokenizers' own encodings (fixtures), label
// positions that point at label tokens for the GPT-2, Llama-3 and Qwen tokenizers (and babygpt2's),
// reproducible prompts (sha256 of the ids), and the errors: a label word that is not one token, a
// label that merges with the text around it, a prompt longer than the context.
import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SHARED } from "../helpers.ts";
import { loadTokenizer, TextTokenizer } from "../../src/tokenize/tokenizer.ts";
import { BUILTIN_TASKS, BUILTIN_TASK_NAMES, loadTaskData, parseTaskSpec, type BuiltinTaskName, type TaskData } from "../../src/icl/tasks.ts";
import { makeSplit, sampleCalibrationPrompts, sampleTestPrompts, sampleTrainPrompts, type PromptSpec } from "../../src/icl/splits.ts";
import { buildStandardSets, labelTokenIds, PromptBuilder, PromptError, renderPrompt, taskTemplate, type BuiltPrompt } from "../../src/icl/prompts.ts";

const DATA = join(SHARED, "data");
const TOK_DIR = join(SHARED, "fixtures/tokenizers");
const REF = JSON.parse(readFileSync(join(TOK_DIR, "reference_encodings.json"), "utf8")) as Record<
  string,
  { prompts: { text: string; ids: number[]; ids_with_special_tokens: number[] }[]; label_tokens: Record<string, number[]> }
>;
const TOKENIZERS = ["gpt2", "llama3", "qwen"] as const;

const toks = {} as Record<(typeof TOKENIZERS)[number] | "babygpt2", TextTokenizer>;
const tasks = {} as Record<BuiltinTaskName, TaskData>;
beforeAll(async () => {
  for (const n of TOKENIZERS) toks[n] = loadTokenizer(join(TOK_DIR, n, "tokenizer.json"));
  toks.babygpt2 = loadTokenizer(join(SHARED, "models/babygpt2/tokenizer.json"));
  for (const n of BUILTIN_TASK_NAMES) tasks[n] = await loadTaskData(BUILTIN_TASKS[n], { dataDir: DATA });
}, 120_000);

const sha = (x: unknown) => createHash("sha256").update(JSON.stringify(x)).digest("hex");

/** Every structural property of a prompt, checked against the data, not against the builder's own bookkeeping. */
function checkPrompt(tok: TextTokenizer, d: TaskData, spec: PromptSpec, p: BuiltPrompt): void {
  const words = d.task.labelWords;
  const demoLabels = spec.demos.map((i) => d.examples[i].label);
  const qLabel = spec.query < 0 ? -1 : d.examples[spec.query].label;
  expect(p.label).toBe(qLabel);
  expect(p.label_positions.length).toBe(spec.demos.length);
  p.label_positions.forEach((pos, j) => {
    expect(p.input_ids[pos]).toBe(p.label_token_ids[demoLabels[j]]);
    expect(tok.decode([p.input_ids[pos]])).toBe(" " + words[demoLabels[j]]);
    if (j > 0) expect(pos).toBeGreaterThan(p.label_positions[j - 1]);
  });
  expect(p.correct_positions).toEqual(p.label_positions.filter((_, j) => demoLabels[j] === qLabel));
  for (const c of p.correct_positions) expect(p.label_positions).toContain(c);
  // the ids are the tokenizer's own encoding of the whole text (special tokens included)
  expect(p.input_ids).toEqual(tok.encode(p.text).ids);
  expect(p.text.endsWith(`${spec.query < 0 ? "" : d.examples[spec.query].text} ${d.task.labelPrefix}`)).toBe(true);
}

test("the template, exactly", () => {
  const t = taskTemplate(BUILTIN_TASKS.sst2);
  const { text, labelSpans } = renderPrompt(t, ["negative", "positive"], [{ text: "a b", label: 0 }, { text: "c", label: 1 }], "d");
  expect(text).toBe("sentence: a b sentiment: negative\nsentence: c sentiment: positive\nsentence: d sentiment:");
  expect(labelSpans.map(([s, e]) => text.slice(s, e))).toEqual([" negative", " positive"]);
});

test("label token ids equal HF's encodings of every built-in label word, for all three tokenizers", () => {
  for (const n of TOKENIZERS) {
    for (const name of BUILTIN_TASK_NAMES) {
      const words = BUILTIN_TASKS[name].labelWords;
      expect(labelTokenIds(toks[n], words)).toEqual(words.map((w) => REF[n].label_tokens[" " + w][0]));
    }
  }
  expect(labelTokenIds(toks.babygpt2, BUILTIN_TASKS.trec.labelWords)).toEqual(labelTokenIds(toks.gpt2, BUILTIN_TASKS.trec.labelWords));
});

test("prompts rebuilt from the fixtures' pieces give HF's text and ids, and the label positions hold the label tokens", () => {
  // the fixtures' four prompts: (task, demonstrations, query)
  const cases: [BuiltinTaskName, [string, string][], string][] = [
    ["sst2", [["hide new secretions from the parental units", "negative"], ["contains no wit , only labored gags", "positive"]],
      "that loves its characters and communicates something rather beautiful about human nature"],
    ["trec", [["How far is it from Denver to Aspen ?", "number"]], "What county is Modesto , California in ?"],
    ["tee", [["@user I can't believe it 😂😂 #blessed  https://t.co/xyz", "joy"]], "Ünïcödé — “quotes” … ok"],
    ["subj", [], "the film 's   multiple   spaces\tand tabs\n\nand blank lines"],
  ];
  for (const n of TOKENIZERS) {
    cases.forEach(([task, demos, query], c) => {
      const b = new PromptBuilder(toks[n], BUILTIN_TASKS[task]);
      const words = BUILTIN_TASKS[task].labelWords as string[];
      const p = b.build(demos.map(([text, w]) => ({ text, label: words.indexOf(w) })), { text: query, label: 0 });
      expect(p.text).toBe(REF[n].prompts[c].text);
      expect(p.input_ids).toEqual(REF[n].prompts[c].ids_with_special_tokens);
      expect(p.label_positions.map((pos) => p.input_ids[pos])).toEqual(demos.map(([, w]) => REF[n].label_tokens[" " + w][0]));
    });
  }
});

describe("label positions point at label tokens: every built-in task, four tokenizers", () => {
  for (const n of [...TOKENIZERS, "babygpt2"] as const) {
    test(n, () => {
      for (const name of BUILTIN_TASK_NAMES) {
        const d = tasks[name];
        const b = new PromptBuilder(toks[n], d.task);
        const s = makeSplit(d, 11);
        const specs = [
          ...sampleTrainPrompts(s, { trainPrompts: 12 }),
          ...sampleTestPrompts(s, { queries: s.testQueries.slice(0, 6) }),
          ...sampleTrainPrompts(s, { trainPrompts: 4, k: 9, seed: 3 }),
        ];
        for (const spec of specs) checkPrompt(toks[n], d, spec, b.buildSpec(d, spec));
      }
    });
  }
});

test("correct positions: every demonstration with the query's label, and only those", () => {
  const d = tasks.sst2;
  const b = new PromptBuilder(toks.gpt2, d.task);
  const neg = d.examples.findIndex((e) => e.label === 0);
  const pos = d.examples.findIndex((e) => e.label === 1);
  const p = b.buildSpec(d, { demos: [neg, pos, pos, neg], query: pos });
  expect(p.correct_positions).toEqual([p.label_positions[1], p.label_positions[2]]);
  const q = b.buildSpec(d, { demos: [neg, neg], query: pos });
  expect(q.correct_positions).toEqual([]);
});

test("the same seed gives the same prompts (sha256 of the ids); another seed gives others", () => {
  const d = tasks.trec;
  const b = new PromptBuilder(toks.gpt2, d.task);
  const run = (seed: number) => {
    // smaller than the default 512 / 512 × 2 to keep the test quick; the sampling is the same
    const s = buildStandardSets(b, d, seed, { trainPrompts: 256, testQueries: 128 });
    expect(s.train.length).toBe(256);
    expect(s.test.length).toBe(256);
    return sha([s.train.map((p) => p.input_ids), s.test.map((p) => p.input_ids)]);
  };
  const a = run(2024);
  expect(run(2024)).toBe(a);
  expect(run(2025)).not.toBe(a);
});

describe("errors", () => {
  test("a label word that is not one token is an error naming the word and its tokens", () => {
    const task = parseTaskSpec(
      { name: "t", in_prefix: "x: ", label_prefix: "y:", label_words: ["positive", "xylophonists"], files: "d.jsonl" },
      "/",
    );
    for (const n of TOKENIZERS) {
      let err: unknown;
      try {
        new PromptBuilder(toks[n], task);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PromptError);
      expect((err as PromptError).code).toBe("LABEL_NOT_ONE_TOKEN");
      expect((err as Error).message).toMatch(/label word "xylophonists" is not one token for .*: " xylophonists" is [2-9] tokens \[\d+ ".+", \d+/);
    }
  });
  test("a label that merges with the text after it is found through the offsets, not by searching for its text", () => {
    // " negatively" / " positively" are single GPT-2 tokens: the span " negative" is not a token boundary
    const b = new PromptBuilder(toks.gpt2, BUILTIN_TASKS.sst2, { template: { ...taskTemplate(BUILTIN_TASKS.sst2), separator: "ly\n" } });
    expect(() => b.build([{ text: "a", label: 0 }], { text: "b", label: 0 })).toThrow(
      /label word "negative" of demonstration 1 is not one token in the prompt .* covered by 1 tokens \[\d+ "Ġnegatively"/,
    );
  });
  test("context length: an error by default; drop-demos drops the earliest demonstrations", () => {
    const d = tasks.sst5;
    const spec = sampleTestPrompts(makeSplit(d, 1), { k: 8, demoSets: 1 })[0];
    const full = new PromptBuilder(toks.gpt2, d.task).buildSpec(d, spec);
    const limit = full.input_ids.length - 1;
    expect(() => new PromptBuilder(toks.gpt2, d.task, { maxTokens: limit }).buildSpec(d, spec)).toThrow(
      new RegExp(`a prompt with 8 demonstrations is ${full.input_ids.length} tokens, more than the model's ${limit}`),
    );
    const cut = new PromptBuilder(toks.gpt2, d.task, { maxTokens: limit, overflow: "drop-demos" }).buildSpec(d, spec);
    expect(cut.input_ids.length).toBeLessThanOrEqual(limit);
    expect(cut.label_positions.length).toBeLessThan(8);
    const kept = spec.demos.slice(8 - cut.label_positions.length);
    checkPrompt(toks.gpt2, d, { demos: kept, query: spec.query }, cut);
    expect(() => new PromptBuilder(toks.gpt2, d.task, { maxTokens: 3, overflow: "drop-demos" }).buildSpec(d, spec)).toThrow(/the query alone does not fit/);
  });
});

test("a tokenizer that adds BOS: it is the first id, n_t counts it, positions shift with it", () => {
  const json = JSON.parse(readFileSync(join(TOK_DIR, "llama3/tokenizer.json"), "utf8"));
  const withBos = TextTokenizer.fromJson(json, { bos_token: "<|begin_of_text|>", add_bos_token: true }, "llama3+bos");
  const bos = withBos.tokenToId("<|begin_of_text|>")!;
  expect(bos).toBe(128000);
  const d = tasks.tee;
  const spec = sampleTrainPrompts(makeSplit(d, 4), { trainPrompts: 1 })[0];
  const p = new PromptBuilder(withBos, d.task).buildSpec(d, spec);
  const q = new PromptBuilder(toks.llama3, d.task).buildSpec(d, spec);
  expect(p.input_ids).toEqual([bos, ...q.input_ids]);
  expect(p.label_positions).toEqual(q.label_positions.map((x) => x + 1));
  checkPrompt(withBos, d, spec, p);
  const noBos = new PromptBuilder(withBos, d.task, { addSpecialTokens: false }).buildSpec(d, spec);
  expect(noBos.input_ids).toEqual(q.input_ids);
});

test("content-free prompts: StaICC's empty query, and Zhao's N/A, empty and [MASK] with the test prompt's own demonstrations", () => {
  const d = tasks.sst2;
  const b = new PromptBuilder(toks.qwen, d.task);
  const s = makeSplit(d, 9);
  const cal = sampleCalibrationPrompts(s, { n: 3 });
  for (const spec of cal) {
    const p = b.buildSpec(d, spec);
    expect(p.text.endsWith("\nsentence:  sentiment:")).toBe(true);
    expect(p.label).toBe(-1);
    expect(p.correct_positions).toEqual([]);
    checkPrompt(toks.qwen, d, spec, p);
  }
  const test0 = sampleTestPrompts(s, { queries: s.testQueries.slice(0, 1), demoSets: 1 })[0];
  const normal = b.buildSpec(d, test0);
  const zhao = b.contentFreePrompts(d, test0);
  expect(zhao.map((p) => p.text.slice(p.text.lastIndexOf("\n") + 1))).toEqual([
    "sentence: N/A sentiment:",
    "sentence:  sentiment:",
    "sentence: [MASK] sentiment:",
  ]);
  for (const p of zhao) {
    expect(p.label).toBe(-1);
    expect(p.label_positions).toEqual(normal.label_positions);
    expect(p.demo_labels).toEqual(normal.demo_labels);
  }
});
