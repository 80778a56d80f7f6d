// StaICC-Diag's 9 templates (an L9 orthogonal design), the consistency samplings, and the
// unseen-label protocol.
import { beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { SHARED } from "../helpers.ts";
import { loadTokenizer, type TextTokenizer } from "../../src/tokenize/tokenizer.ts";
import { BUILTIN_TASKS, BUILTIN_TASK_NAMES, loadTaskData, parseTaskSpec, type BuiltinTaskName, type TaskData } from "../../src/icl/tasks.ts";
import { makeSplit } from "../../src/icl/splits.ts";
import { PromptBuilder, taskTemplate } from "../../src/icl/prompts.ts";
import {
  buildTemplateConsistencyPrompts,
  consistencyTemplates,
  L9_ORTHOGONAL,
  sampleDemoConsistency,
  sampleTemplateConsistency,
  sampleUnseenLabelPrompts,
  templateFactors,
} from "../../src/icl/templates.ts";

const DATA = join(SHARED, "data");
const TOKENIZERS = ["gpt2", "llama3", "qwen"] as const;
const toks = {} as Record<(typeof TOKENIZERS)[number], TextTokenizer>;
const tasks = {} as Record<BuiltinTaskName, TaskData>;
beforeAll(async () => {
  for (const n of TOKENIZERS) toks[n] = loadTokenizer(join(SHARED, "fixtures/tokenizers", n, "tokenizer.json"));
  for (const n of BUILTIN_TASK_NAMES) tasks[n] = await loadTaskData(BUILTIN_TASKS[n], { dataDir: DATA });
}, 120_000);

test("L9(3^4) is orthogonal: every pair of factors holds each of the 9 level pairs exactly once", () => {
  expect(L9_ORTHOGONAL.length).toBe(9);
  for (let a = 0; a < 4; a++) {
    for (let b = a + 1; b < 4; b++) {
      const pairs = new Set(L9_ORTHOGONAL.map((r) => `${r[a]},${r[b]}`));
      expect(pairs.size).toBe(9);
    }
  }
});

test("9 distinct templates per task; template 0 is the task's standard one; every factor level is used 3 times", () => {
  for (const n of BUILTIN_TASK_NAMES) {
    const t = consistencyTemplates(BUILTIN_TASKS[n]);
    expect(t.length).toBe(9);
    expect(new Set(t.map((x) => JSON.stringify(x))).size).toBe(9);
    expect(t[0]).toEqual(taskTemplate(BUILTIN_TASKS[n]));
    const f = templateFactors(BUILTIN_TASKS[n]);
    for (const key of ["instruction", "inPrefix", "labelPrefix", "separator"] as const) {
      expect(new Set(f[key]).size).toBe(3);
      for (const level of f[key]) expect(t.filter((x) => x[key] === level).length).toBe(3);
    }
    for (const lp of f.labelPrefix) expect(lp).not.toMatch(/\s$/);
  }
  expect(templateFactors(BUILTIN_TASKS.trec).labelPrefix).toEqual(["target:", "label:", "Label:"]);
  expect(templateFactors(BUILTIN_TASKS.sst2).separator).toEqual(["\n", " ", "\t"]);
});

test("a user task without templates gets generic factors around its own prefixes", () => {
  const t = parseTaskSpec({ name: "u", in_prefix: "text: ", label_prefix: "label:", label_words: ["a", "b"], files: "x.jsonl" }, "/");
  const f = templateFactors(t);
  expect(f.inPrefix).toEqual(["text: ", "input: ", "sentence: "]);
  expect(f.labelPrefix).toEqual(["label:", "Label:", "answer:"]);
  expect(new Set(consistencyTemplates(t).map((x) => JSON.stringify(x))).size).toBe(9);
});

test("template consistency prompts: 100 queries × 9 templates, same demonstrations, valid label positions for three tokenizers", () => {
  for (const n of BUILTIN_TASK_NAMES) {
    const d = tasks[n];
    const split = makeSplit(d, 21);
    const specs = sampleTemplateConsistency(split);
    expect(specs.length).toBe(100);
    expect(specs.map((s) => s.query)).toEqual(split.testQueries.slice(0, 100));
    const demoPool = new Set(split.demoPool);
    for (const s of specs) for (const i of s.demos) expect(demoPool.has(i)).toBe(true);
    for (const tn of TOKENIZERS) {
      // two queries per task and tokenizer (the full 900 prompts are the same code path)
      const b = new PromptBuilder(toks[tn], d.task);
      const { prompts, templates } = buildTemplateConsistencyPrompts(b, d, split, { queries: 2 });
      expect(prompts.length).toBe(18);
      prompts.forEach((p, i) => {
        const t = templates[i % 9];
        expect(p.text.startsWith(t.instruction + t.inPrefix)).toBe(true);
        expect(p.text.endsWith(" " + t.labelPrefix)).toBe(true);
        // same demonstrations under every template of a query
        expect(p.demo_labels).toEqual(prompts[Math.floor(i / 9) * 9].demo_labels);
        p.label_positions.forEach((pos, j) => expect(p.input_ids[pos]).toBe(p.label_token_ids[p.demo_labels[j]]));
      });
    }
  }
});

test("demonstration consistency: 128 queries × 8 sets, query-major", () => {
  const split = makeSplit(tasks.subj, 3);
  const specs = sampleDemoConsistency(split);
  expect(specs.length).toBe(1024);
  specs.forEach((s, i) => expect(s.query).toBe(split.testQueries[Math.floor(i / 8)]));
  expect(new Set(specs.slice(0, 8).map((s) => JSON.stringify(s.demos))).size).toBe(8);
  expect(() => sampleDemoConsistency(makeSplit(tasks.subj, 3, { testQueries: 100 }))).toThrow(/needs 128 test queries, the split has 100/);
});

test("unseen label: no demonstration ever carries the query's label", () => {
  for (const n of BUILTIN_TASK_NAMES) {
    const d = tasks[n];
    const split = makeSplit(d, 8);
    const specs = sampleUnseenLabelPrompts(d, split);
    expect(specs.length).toBe(1024);
    const pool = new Set(split.demoPool);
    let otherLabels = 0;
    for (const s of specs) {
      const q = d.examples[s.query].label;
      expect(new Set(s.demos).size).toBe(4);
      for (const i of s.demos) {
        expect(pool.has(i)).toBe(true);
        expect(d.examples[i].label).not.toBe(q);
        otherLabels++;
      }
    }
    expect(otherLabels).toBe(4096);
  }
  // the built prompts then have no correct positions
  const d = tasks.trec;
  const b = new PromptBuilder(toks.gpt2, d.task);
  for (const s of sampleUnseenLabelPrompts(d, makeSplit(d, 1), { demoSets: 1 }).slice(0, 20)) {
    expect(b.buildSpec(d, s).correct_positions).toEqual([]);
  }
  // too few examples of other labels is an error
  const tiny = makeSplit(tasks.sst2, 1, { demoPool: 3 });
  expect(() => sampleUnseenLabelPrompts(tasks.sst2, tiny)).toThrow(/needs 4 demonstrations of other labels, the demonstration pool has [0-3]/);
});
