// The built-in task table against the method doc, the label mapping of every data file in
// ../shared/data, and user-defined task specs.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHARED } from "../helpers.ts";
import { readRecords } from "../../src/icl/data.ts";
import {
  BUILTIN_TASKS,
  BUILTIN_TASK_NAMES,
  loadTaskData,
  loadTaskSpecFile,
  parseTaskSpec,
  resolveTask,
  TaskError,
  withDataPath,
  type BuiltinTaskName,
} from "../../src/icl/tasks.ts";

const DATA = join(SHARED, "data");

// abft-method.md §1, written out again here so that the table in tasks.ts is checked against it
const DOC: Record<BuiltinTaskName, [string, string, string[]]> = {
  sst2: ["sentence: ", "sentiment:", ["negative", "positive"]],
  mr: ["review: ", "sentiment:", ["negative", "positive"]],
  fp: ["sentence: ", "sentiment:", ["negative", "neutral", "positive"]],
  sst5: ["sentence: ", "sentiment:", ["poor", "bad", "neutral", "good", "great"]],
  trec: ["question: ", "target:", ["short", "entity", "description", "person", "location", "number"]],
  subj: ["review: ", "subjectiveness:", ["objective", "subjective"]],
  tee: ["tweet: ", "emotion:", ["anger", "joy", "positive", "sad"]],
  teh: ["tweet: ", "hate speech:", ["normal", "hate"]],
};

// the data files' class names for each label word (SOURCES.md)
const NAMES: Record<BuiltinTaskName, string[]> = {
  sst2: ["negative", "positive"],
  mr: ["negative", "positive"],
  fp: ["negative", "neutral", "positive"],
  sst5: ["very negative", "negative", "neutral", "positive", "very positive"],
  trec: ["abbreviation", "entity", "description", "human", "location", "number"],
  subj: ["objective", "subjective"],
  tee: ["anger", "joy", "optimism", "sadness"],
  teh: ["non-hate", "hate"],
};

test("the built-in table matches the method doc (prefixes, label words in label order, pool sizes)", () => {
  expect([...BUILTIN_TASK_NAMES]).toEqual(Object.keys(DOC) as BuiltinTaskName[]);
  for (const name of BUILTIN_TASK_NAMES) {
    const t = BUILTIN_TASKS[name];
    expect([t.inPrefix, t.labelPrefix, [...t.labelWords]]).toEqual(DOC[name]);
    expect(t.demoPool).toBe(name === "fp" ? 512 : name === "tee" ? 3192 : 4096);
    NAMES[name].forEach((n, i) => expect(t.labelNames[n]).toBe(i));
  }
  expect(BUILTIN_TASKS.trec.labelNames["human"]).toBe(BUILTIN_TASKS.trec.labelWords.indexOf("person"));
  expect(BUILTIN_TASKS.tee.labelNames["optimism"]).toBe(BUILTIN_TASKS.tee.labelWords.indexOf("positive"));
});

test("every label in every data file maps to a label of its task (extra files included)", async () => {
  const files = readdirSync(DATA).filter((f) => f.endsWith(".jsonl"));
  expect(files.length).toBe(17);
  for (const f of files) {
    const name = f.split(/[._]/)[0] as BuiltinTaskName;
    const task = BUILTIN_TASKS[name];
    expect(task).toBeDefined();
    // by class name
    const byName = await readRecords(join(DATA, f), { labelColumn: "label" });
    const seen = new Set<number>();
    for (const r of byName) {
      const i = task.labelNames[r.label];
      if (i === undefined) throw new Error(`${r.where}: ${r.label} unmapped`);
      seen.add(i);
    }
    expect(seen.size).toBe(task.labelWords.length);
    // sst5 reads label_id: it must agree with the names on every row
    if (name === "sst5") {
      const byId = await readRecords(join(DATA, f), { labelCandidates: task.labelCandidates });
      byId.forEach((r, j) => expect(task.labelNames[r.label]).toBe(task.labelNames[byName[j].label]));
      expect(byId[0].label).toMatch(/^[0-4]$/);
    }
  }
});

test("loadTaskData: every built-in task loads, with the documented files and counts", async () => {
  const counts: Record<BuiltinTaskName, [number, number]> = {
    sst2: [67349, 872],
    mr: [10662, 10662],
    fp: [2264, 2264],
    sst5: [8544, 2210],
    trec: [5952, 5952],
    subj: [10000, 10000],
    tee: [5052, 5052],
    teh: [8993, 2970], // 7 empty training texts dropped
  };
  for (const name of BUILTIN_TASK_NAMES) {
    const d = await loadTaskData(BUILTIN_TASKS[name], { dataDir: DATA });
    const [nTrain, nAll] = counts[name];
    expect(d.split).toBe(name === "sst2" || name === "sst5" || name === "teh" ? "separate" : "pooled");
    expect(d.nTrainSide).toBe(nTrain);
    expect(d.examples.length).toBe(d.split === "separate" ? nTrain + nAll : nAll);
    expect(d.droppedEmpty).toBe(name === "teh" ? 7 : 0);
    for (const e of d.examples) {
      expect(e.text.length).toBeGreaterThan(0);
      expect(e.label >= 0 && e.label < d.task.labelWords.length).toBe(true);
    }
  }
  // split override: pooled sst2 reads both files into one pool
  const pooled = await loadTaskData(BUILTIN_TASKS.sst2, { dataDir: DATA, split: "pooled" });
  expect(pooled.nTrainSide).toBe(67349 + 872);
  await expect(loadTaskData(BUILTIN_TASKS.mr, { dataDir: DATA, split: "separate" })).rejects.toThrow(/needs train and test files/);
  await expect(loadTaskData(BUILTIN_TASKS.mr)).rejects.toThrow(/no data folder was given/);
});

test("a label the task does not know is an error naming the row", async () => {
  const dir = mkdtempSync(join(tmpdir(), "abft-task-"));
  try {
    writeFileSync(join(dir, "x.jsonl"), '{"text": "a", "label": "negative"}\n{"text": "b", "label": "meh"}\n');
    const task = withDataPath(BUILTIN_TASKS.sst2, join(dir, "x.jsonl"));
    expect(task.split).toBe("pooled");
    await expect(loadTaskData(task)).rejects.toThrow(/x.jsonl:2: label "meh" is not a label of task sst2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("user-defined tasks", () => {
  test("a JSON spec with a CSV file: label names map to label words, paths resolve against the spec", async () => {
    const dir = mkdtempSync(join(tmpdir(), "abft-spec-"));
    try {
      writeFileSync(join(dir, "train.csv"), "review,stars\ngreat,pos\nawful,neg\nfine,pos\n");
      writeFileSync(join(dir, "test.csv"), "review,stars\nok,pos\n");
      const spec = {
        name: "mine",
        in_prefix: "review: ",
        label_prefix: "verdict:",
        label_words: ["bad", "good"],
        label_names: { bad: ["neg", "0"], good: "pos" },
        files: { train: "train.csv", test: ["test.csv"] },
        text_column: "review",
        label_column: "stars",
        demo_pool: 1,
      };
      writeFileSync(join(dir, "mine.json"), JSON.stringify(spec));
      const task = resolveTask(join(dir, "mine.json"));
      expect(task).toMatchObject({ name: "mine", split: "separate", demoPool: 1, builtin: false, labelNames: { neg: 0, "0": 0, pos: 1 } });
      const d = await loadTaskData(task);
      expect(d.examples.map((e) => [e.text, e.label])).toEqual([["great", 1], ["awful", 0], ["fine", 1], ["ok", 1]]);
      expect(d.nTrainSide).toBe(3);
      expect(loadTaskSpecFile(join(dir, "mine.json")).labelWords).toEqual(["bad", "good"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("defaults: label names are the label words, one file is pooled", () => {
    const t = parseTaskSpec({ name: "t", in_prefix: "x: ", label_prefix: "y:", label_words: ["a", "b"], files: "d.jsonl" }, "/base");
    expect(t.labelNames).toEqual({ a: 0, b: 1 });
    expect(t.files).toEqual({ all: ["d.jsonl"] });
    expect(t.split).toBe("pooled");
    expect(t.baseDir).toBe("/base");
  });
  test("spec errors are clear", () => {
    const base = { name: "t", in_prefix: "x: ", label_prefix: "y:", label_words: ["a", "b"], files: "d.jsonl" };
    const bad = (patch: object, re: RegExp) => {
      let err: unknown;
      try {
        parseTaskSpec({ ...base, ...patch }, "/", "spec.json");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TaskError);
      expect((err as Error).message).toMatch(re);
    };
    bad({ label_prefix: "y: " }, /spec.json: "label_prefix" "y: " ends with whitespace/);
    bad({ label_words: ["a"] }, /"label_words" must be an array of at least 2/);
    bad({ label_words: ["a", "a"] }, /repeated word/);
    bad({ label_names: { a: "x", c: "y" } }, /"label_names" key "c" is not a label word/);
    bad({ label_names: { a: "x", b: "x" } }, /label name "x" is given for two labels/);
    bad({ label_names: { a: "x" } }, /gives no name for the label word "b"/);
    bad({ files: { train: "a.csv" }, split: "separate" }, /needs both "files".train and "files".test/);
    bad({ labelwords: 1 }, /unknown key "labelwords"/);
    bad({ templates: { instruction: ["", "a", "b"], in_prefix: ["z: ", "q: ", "r: "], label_prefix: ["y:", "l:", "L:"], separator: ["\n", " ", "\t"] } },
      /level 0 of in_prefix and label_prefix must be the task's own/);
    expect(() => resolveTask("nosuchtask")).toThrow(/unknown task "nosuchtask"/);
  });
});
