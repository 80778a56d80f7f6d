// ICL classification tasks: the 8 built-in tasks of the paper (../shared/docs/abft-method.md §1,
// Table 5 of the paper, StaICC's default templates) and user-defined tasks from a JSON spec, plus
// loading a task's examples from its data files.
//
// A task is: an input prefix, a label prefix (no trailing space: the template puts " " + label word
// after it), the label words in label order (each must be one token " " + word for the model), the
// mapping from the data files' label values to label indices, and its data files.
//
// Data files of the built-in tasks (../shared/data, see SOURCES.md there) and where the pools come
// from (decision; splits.ts draws the pools):
//   task  files                                   split     why
//   sst2  sst2.train / sst2.test (GLUE valid.)    separate  train 67,349 holds both pools; test 872 >= 512
//   mr    mr.all                                  pooled    one file
//   fp    fp.all (Sentences_AllAgree)             pooled    one file (2,264 >= 1024 + 512 + 512)
//   sst5  sst5.train / sst5.test                  separate  train 8,544 >= 1024 + 4096; test 2,210
//   trec  trec.train + trec.test                  pooled    the test file has 500 < 512 queries
//   subj  subj.all                                pooled    one file
//   tee   tee.train + tee.val + tee.test          pooled    train 3,257 < 1024 + 3192 (StaICC pools them too)
//   teh   teh.train / teh.test                    separate  train 9,000 >= 1024 + 4096; test 2,970
// "separate": the training pool and the demonstration pool are drawn from the train files and the
// test queries from the test files, so test queries are held-out texts (babygpt2 was pretrained on
// the tasks' training-split texts). "pooled": all the files are concatenated and split at random
// (as StaICC does for every task). `split` in loadTaskData's options overrides the task's choice.
// Unused files: sst5.dev, teh.val, fp_50agree.all.
//
// Label values: the files' class names (trec "human" → the word "person", tee "optimism" →
// "positive", teh "non-hate" → "normal", ...) and the integer ids of the HF datasets the files come
// from (glue/sst2, rotten_tomatoes, financial_phrasebank, SetFit/sst5, CogComp/trec coarse_label,
// SetFit/subj, tweet_eval), so a Parquet copy of those datasets works as --data. sst5 reads its
// `label_id` column (0..4) when present, else `label`.
//
// Examples whose text is empty (teh.train has 7, teh.val 1: empty in the source) are dropped and
// counted; `index` of an Example is its position in TaskData.examples (after dropping).
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { AbftError } from "../gpu/errors.ts";
import { readRecords, type DataRecord, LABEL_COLUMNS } from "./data.ts";

/** Three levels of each factor of StaICC-Diag's template design (see templates.ts). */
export interface TemplateFactors {
  instruction: readonly string[];
  inPrefix: readonly string[];
  labelPrefix: readonly string[];
  separator: readonly string[];
}

export interface TaskFiles {
  train?: readonly string[];
  test?: readonly string[];
  /** files pooled together (single-file tasks, or tasks whose test file is too small) */
  all?: readonly string[];
}

export type SplitMode = "separate" | "pooled";

export interface TaskSpec {
  name: string;
  /** e.g. "sentence: " (with its trailing space) */
  inPrefix: string;
  /** e.g. "sentiment:" (no trailing space) */
  labelPrefix: string;
  /** in label order; label i is the token " " + labelWords[i] */
  labelWords: readonly string[];
  /** a data file's label value (class name, or id as a decimal string) → label index */
  labelNames: Readonly<Record<string, number>>;
  /** relative paths resolve against the data folder (or baseDir) */
  files: TaskFiles;
  split: SplitMode;
  /** default demonstration pool size (4096; FP 512; TEE 3192) */
  demoPool: number;
  textColumn?: string;
  labelColumn?: string;
  /** label columns tried in order when labelColumn is not set */
  labelCandidates?: readonly string[];
  /** StaICC-Diag template factors for user tasks (templates.ts has the built-in ones) */
  templateFactors?: TemplateFactors;
  /** folder for relative file paths when no data folder is given (a spec file's folder) */
  baseDir?: string;
  builtin: boolean;
}

export class TaskError extends AbftError {
  constructor(message: string, hint?: string) {
    super(message, "BAD_TASK", hint);
  }
}

// ---------------------------------------------------------------------------------------------
// Built-in tasks

export const BUILTIN_TASK_NAMES = ["sst2", "mr", "fp", "sst5", "trec", "subj", "tee", "teh"] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASK_NAMES)[number];

/** names[i] lists the data values of label i (class names, then the HF dataset's integer id). */
function nameTable(names: readonly (readonly string[])[]): Record<string, number> {
  const out: Record<string, number> = {};
  names.forEach((list, i) => {
    for (const n of list) out[n] = i;
    out[String(i)] = i;
  });
  return out;
}

function builtin(
  name: BuiltinTaskName,
  inPrefix: string,
  labelPrefix: string,
  labelWords: string[],
  names: string[][],
  files: TaskFiles,
  split: SplitMode,
  extra: Partial<TaskSpec> = {},
): TaskSpec {
  return { name, inPrefix, labelPrefix, labelWords, labelNames: nameTable(names), files, split, demoPool: 4096, builtin: true, ...extra };
}

export const BUILTIN_TASKS: Readonly<Record<BuiltinTaskName, TaskSpec>> = {
  sst2: builtin("sst2", "sentence: ", "sentiment:", ["negative", "positive"], [["negative"], ["positive"]],
    { train: ["sst2.train.jsonl"], test: ["sst2.test.jsonl"] }, "separate"),
  mr: builtin("mr", "review: ", "sentiment:", ["negative", "positive"], [["negative"], ["positive"]],
    { all: ["mr.all.jsonl"] }, "pooled"),
  fp: builtin("fp", "sentence: ", "sentiment:", ["negative", "neutral", "positive"], [["negative"], ["neutral"], ["positive"]],
    { all: ["fp.all.jsonl"] }, "pooled", { demoPool: 512 }),
  sst5: builtin("sst5", "sentence: ", "sentiment:", ["poor", "bad", "neutral", "good", "great"],
    [["very negative"], ["negative"], ["neutral"], ["positive"], ["very positive"]],
    { train: ["sst5.train.jsonl"], test: ["sst5.test.jsonl"] }, "separate", { labelCandidates: ["label_id", "label"] }),
  trec: builtin("trec", "question: ", "target:", ["short", "entity", "description", "person", "location", "number"],
    [["abbreviation", "ABBR"], ["entity", "ENTY"], ["description", "DESC"], ["human", "HUM"], ["location", "LOC"], ["number", "NUM"]],
    { all: ["trec.train.jsonl", "trec.test.jsonl"] }, "pooled", { labelCandidates: ["label", "coarse_label"] }),
  subj: builtin("subj", "review: ", "subjectiveness:", ["objective", "subjective"], [["objective"], ["subjective"]],
    { all: ["subj.all.jsonl"] }, "pooled"),
  tee: builtin("tee", "tweet: ", "emotion:", ["anger", "joy", "positive", "sad"], [["anger"], ["joy"], ["optimism"], ["sadness"]],
    { all: ["tee.train.jsonl", "tee.val.jsonl", "tee.test.jsonl"] }, "pooled", { demoPool: 3192 }),
  teh: builtin("teh", "tweet: ", "hate speech:", ["normal", "hate"], [["non-hate", "not-hate"], ["hate"]],
    { train: ["teh.train.jsonl"], test: ["teh.test.jsonl"] }, "separate"),
};

export function isBuiltinTask(name: string): name is BuiltinTaskName {
  return (BUILTIN_TASK_NAMES as readonly string[]).includes(name);
}

/** A built-in task by name, or a user task from a .json spec file. */
export function resolveTask(nameOrSpecPath: string): TaskSpec {
  if (isBuiltinTask(nameOrSpecPath)) return BUILTIN_TASKS[nameOrSpecPath];
  if (nameOrSpecPath.endsWith(".json") || existsSync(nameOrSpecPath)) return loadTaskSpecFile(nameOrSpecPath);
  throw new TaskError(
    `unknown task "${nameOrSpecPath}"`,
    `use one of ${BUILTIN_TASK_NAMES.join(", ")}, or the path of a task spec .json file`,
  );
}

/**
 * The task reading its data from `path` (--data): a folder holds the task's usual file names; a
 * single file is used as the task's only (pooled) file.
 */
export function withDataPath(task: TaskSpec, path: string): TaskSpec {
  if (!existsSync(path)) throw new TaskError(`${path}: no such file or folder`);
  if (statSync(path).isDirectory()) return { ...task, baseDir: resolve(path) };
  return { ...task, files: { all: [resolve(path)] }, split: "pooled" };
}

// ---------------------------------------------------------------------------------------------
// User-defined tasks: a small JSON spec
//
// {
//   "name": "mytask",
//   "in_prefix": "review: ",                       input prefix, with its trailing space
//   "label_prefix": "sentiment:",                  no trailing space
//   "label_words": ["negative", "positive"],       in label order; each one token as " " + word
//   "label_names": {"negative": ["neg", "0"], "positive": ["pos", "1"]},
//                                                  optional: label word → the files' values for it
//                                                  (or an array parallel to label_words); default:
//                                                  the label words themselves
//   "files": {"train": "train.csv", "test": "test.parquet"}  or {"all": ["a.jsonl", "b.jsonl"]}
//                                                  or one path; relative to the spec file's folder
//   "split": "separate" | "pooled",                optional: default separate when train and test
//                                                  files are given, else pooled
//   "demo_pool": 4096,                             optional
//   "text_column": "text", "label_column": "label", optional
//   "templates": {"instruction": [3], "in_prefix": [3], "label_prefix": [3], "separator": [3]}
//                                                  optional: StaICC-Diag factors (level 0 = the
//                                                  task's own template)
// }

const SPEC_KEYS = new Set([
  "name", "in_prefix", "label_prefix", "label_words", "label_names", "files", "split", "demo_pool",
  "text_column", "label_column", "templates", "description",
]);

export function loadTaskSpecFile(path: string): TaskSpec {
  if (!existsSync(path)) throw new TaskError(`${path}: no such task spec file`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new TaskError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  return parseTaskSpec(json, dirname(resolve(path)), path);
}

export function parseTaskSpec(json: unknown, baseDir: string, source = "task spec"): TaskSpec {
  const fail = (msg: string): never => {
    throw new TaskError(`${source}: ${msg}`);
  };
  if (json === null || typeof json !== "object" || Array.isArray(json)) fail("expected a JSON object");
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!SPEC_KEYS.has(k)) fail(`unknown key "${k}" (keys: ${[...SPEC_KEYS].join(", ")})`);
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (v === undefined) return required ? fail(`missing "${k}"`) : undefined;
    if (typeof v !== "string") fail(`"${k}" must be a string`);
    return v as string;
  };
  const strList = (v: unknown, what: string): string[] => {
    if (typeof v === "string") return [v];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(`${what} must be a string or an array of strings`);
    return v as string[];
  };

  const name = str("name", true)!;
  if (name.trim() === "") fail(`"name" is empty`);
  const inPrefix = str("in_prefix", true)!;
  const labelPrefix = str("label_prefix", true)!;
  if (/\s$/.test(labelPrefix)) {
    fail(`"label_prefix" ${JSON.stringify(labelPrefix)} ends with whitespace; the template itself puts one space before the label word`);
  }
  const words = o.label_words;
  if (!Array.isArray(words) || words.length < 2 || words.some((w) => typeof w !== "string" || w.trim() === "" || w !== w.trim())) {
    fail(`"label_words" must be an array of at least 2 non-empty words without surrounding spaces`);
  }
  const labelWords = words as string[];
  if (new Set(labelWords).size !== labelWords.length) fail(`"label_words" has a repeated word`);

  const labelNames: Record<string, number> = {};
  const addName = (n: string, i: number) => {
    if (n in labelNames && labelNames[n] !== i) fail(`label name "${n}" is given for two labels`);
    labelNames[n] = i;
  };
  const ln = o.label_names;
  if (ln === undefined) {
    labelWords.forEach((w, i) => addName(w, i));
  } else if (Array.isArray(ln)) {
    if (ln.length !== labelWords.length) fail(`"label_names" has ${ln.length} entries, "label_words" ${labelWords.length}`);
    ln.forEach((v, i) => strList(v, `"label_names"[${i}]`).forEach((n) => addName(n, i)));
  } else if (ln !== null && typeof ln === "object") {
    for (const [word, v] of Object.entries(ln as Record<string, unknown>)) {
      const i = labelWords.indexOf(word);
      if (i < 0) fail(`"label_names" key "${word}" is not a label word (${labelWords.join(", ")})`);
      strList(v, `"label_names"."${word}"`).forEach((n) => addName(n, i));
    }
    labelWords.forEach((w, i) => {
      if (!Object.values(labelNames).includes(i)) fail(`"label_names" gives no name for the label word "${w}"`);
    });
  } else {
    fail(`"label_names" must be an object (label word → names) or an array`);
  }

  let files: TaskFiles;
  const f = o.files;
  if (typeof f === "string" || Array.isArray(f)) {
    files = { all: strList(f, `"files"`) };
  } else if (f !== null && typeof f === "object") {
    const fo = f as Record<string, unknown>;
    for (const k of Object.keys(fo)) if (!["train", "test", "all"].includes(k)) fail(`"files" has unknown key "${k}" (train, test, all)`);
    files = {};
    if (fo.train !== undefined) files.train = strList(fo.train, `"files".train`);
    if (fo.test !== undefined) files.test = strList(fo.test, `"files".test`);
    if (fo.all !== undefined) files.all = strList(fo.all, `"files".all`);
  } else {
    return fail(`missing "files"`);
  }
  const nFiles = (files.train?.length ?? 0) + (files.test?.length ?? 0) + (files.all?.length ?? 0);
  if (nFiles === 0) fail(`"files" lists no file`);
  const canSeparate = !!files.train?.length && !!files.test?.length;
  const split = (str("split", false) ?? (canSeparate ? "separate" : "pooled")) as SplitMode;
  if (split !== "separate" && split !== "pooled") fail(`"split" must be "separate" or "pooled"`);
  if (split === "separate" && !canSeparate) fail(`"split": "separate" needs both "files".train and "files".test`);

  let demoPool = 4096;
  if (o.demo_pool !== undefined) {
    if (!Number.isInteger(o.demo_pool) || (o.demo_pool as number) < 1) fail(`"demo_pool" must be a positive integer`);
    demoPool = o.demo_pool as number;
  }

  let templateFactors: TemplateFactors | undefined;
  if (o.templates !== undefined) {
    const t = o.templates as Record<string, unknown>;
    if (t === null || typeof t !== "object") fail(`"templates" must be an object`);
    const three = (k: string): string[] => {
      const v = t[k];
      if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "string")) fail(`"templates".${k} must be an array of 3 strings`);
      return v as string[];
    };
    templateFactors = { instruction: three("instruction"), inPrefix: three("in_prefix"), labelPrefix: three("label_prefix"), separator: three("separator") };
    if (templateFactors.inPrefix[0] !== inPrefix || templateFactors.labelPrefix[0] !== labelPrefix) {
      fail(`"templates": level 0 of in_prefix and label_prefix must be the task's own "in_prefix" and "label_prefix"`);
    }
    for (const lp of templateFactors.labelPrefix) if (/\s$/.test(lp)) fail(`"templates".label_prefix ${JSON.stringify(lp)} ends with whitespace`);
  }

  return {
    name,
    inPrefix,
    labelPrefix,
    labelWords,
    labelNames,
    files,
    split,
    demoPool,
    textColumn: str("text_column", false),
    labelColumn: str("label_column", false),
    templateFactors,
    baseDir,
    builtin: false,
  };
}

// ---------------------------------------------------------------------------------------------
// Loading a task's examples

export interface Example {
  text: string;
  /** label index into task.labelWords */
  label: number;
  /** "path:line" / "path: row N" */
  where: string;
}

export interface TaskData {
  task: TaskSpec;
  /** all examples; with split "separate" the train files' examples come first */
  examples: Example[];
  split: SplitMode;
  /** separate: examples[0, nTrainSide) come from the train files, the rest from the test files; pooled: examples.length */
  nTrainSide: number;
  /** rows dropped because their text is empty */
  droppedEmpty: number;
  /** the files read, in order */
  files: string[];
}

export interface LoadTaskOptions {
  /** folder of the task's relative file paths (overrides task.baseDir) */
  dataDir?: string;
  /** overrides task.split */
  split?: SplitMode;
}

export async function loadTaskData(task: TaskSpec, opts: LoadTaskOptions = {}): Promise<TaskData> {
  const split = opts.split ?? task.split;
  const resolveFile = (f: string): string => {
    if (isAbsolute(f)) return f;
    const dir = opts.dataDir ?? task.baseDir;
    if (dir === undefined) {
      throw new TaskError(`task ${task.name}: the data file "${f}" is relative but no data folder was given`, "pass --data <folder>");
    }
    return join(dir, f);
  };
  let trainFiles: string[];
  let testFiles: string[];
  if (split === "separate") {
    if (!task.files.train?.length || !task.files.test?.length) {
      throw new TaskError(`task ${task.name}: split "separate" needs train and test files, the task has ${describeFiles(task.files)}`, "use the pooled split");
    }
    trainFiles = [...task.files.train];
    testFiles = [...task.files.test];
  } else {
    trainFiles = [...(task.files.train ?? []), ...(task.files.test ?? []), ...(task.files.all ?? [])];
    testFiles = [];
  }
  const readOpts = {
    textColumn: task.textColumn,
    labelColumn: task.labelColumn,
    labelCandidates: task.labelCandidates ?? LABEL_COLUMNS,
  };
  const examples: Example[] = [];
  let droppedEmpty = 0;
  const files: string[] = [];
  const readAll = async (list: string[]) => {
    for (const f of list) {
      const path = resolveFile(f);
      files.push(path);
      for (const r of await readRecords(path, readOpts)) {
        if (r.text === "") {
          droppedEmpty++;
          continue;
        }
        examples.push({ text: r.text, label: labelIndex(task, r), where: r.where });
      }
    }
  };
  await readAll(trainFiles);
  const nTrainSide = examples.length;
  await readAll(testFiles);
  return { task, examples, split, nTrainSide: split === "separate" ? nTrainSide : examples.length, droppedEmpty, files };
}

function labelIndex(task: TaskSpec, r: DataRecord): number {
  const i = task.labelNames[r.label];
  if (i === undefined) {
    const known = Object.keys(task.labelNames).map((n) => JSON.stringify(n)).join(", ");
    throw new TaskError(`${r.where}: label ${JSON.stringify(r.label)} is not a label of task ${task.name} (known: ${known})`);
  }
  return i;
}

function describeFiles(f: TaskFiles): string {
  const parts: string[] = [];
  if (f.train?.length) parts.push(`train ${f.train.join(", ")}`);
  if (f.test?.length) parts.push(`test ${f.test.join(", ")}`);
  if (f.all?.length) parts.push(`all ${f.all.join(", ")}`);
  return parts.join("; ") || "no files";
}
