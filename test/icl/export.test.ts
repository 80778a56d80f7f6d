// Prompts JSONL: export → import is exact, and imported files are validated line by line.
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHARED } from "../helpers.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { BUILTIN_TASKS, loadTaskData } from "../../src/icl/tasks.ts";
import { makeSplit, sampleCalibrationPrompts, sampleTestPrompts, sampleTrainPrompts } from "../../src/icl/splits.ts";
import { PromptBuilder, toIclPrompt, type IclPrompt } from "../../src/icl/prompts.ts";
import { exportPrompts, formatPromptsJsonl, importPrompts, parsePromptsJsonl, PromptFileError, promptToJsonLine } from "../../src/icl/export.ts";

test("export → import round trip is exact (training, test and content-free prompts)", async () => {
  const d = await loadTaskData(BUILTIN_TASKS.fp, { dataDir: join(SHARED, "data") });
  const b = new PromptBuilder(loadTokenizer(join(SHARED, "fixtures/tokenizers/gpt2/tokenizer.json")), d.task);
  const s = makeSplit(d, 5);
  const specs = [
    ...sampleTrainPrompts(s, { trainPrompts: 20 }),
    ...sampleTestPrompts(s, { queries: s.testQueries.slice(0, 10) }),
    ...sampleCalibrationPrompts(s, { n: 3 }),
  ];
  const prompts = b.buildAll(d, specs);
  const dir = mkdtempSync(join(tmpdir(), "abft-export-"));
  try {
    const path = join(dir, "p.jsonl");
    exportPrompts(path, prompts);
    const text = readFileSync(path, "utf8");
    expect(text.split("\n").length).toBe(prompts.length + 1);
    expect(text.endsWith("\n")).toBe(true);
    const back = importPrompts(path, { vocabSize: 50257 });
    expect(back).toEqual(prompts.map(toIclPrompt));
    // only the five fields, in order, and a second export is byte-identical
    expect(Object.keys(JSON.parse(text.split("\n")[0]))).toEqual(["input_ids", "label_positions", "correct_positions", "label", "label_token_ids"]);
    expect(formatPromptsJsonl(back)).toBe(text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const good: IclPrompt = { input_ids: [5, 10, 6, 11, 7, 8], label_positions: [1, 3], correct_positions: [3], label: 1, label_token_ids: [10, 11] };

test("blank lines and extra keys are accepted", () => {
  const line = JSON.stringify({ ...good, text: "ignored" });
  expect(parsePromptsJsonl(`\n${line}\r\n\n${promptToJsonLine(good)}\n`)).toEqual([good, good]);
});

test("invalid lines are errors that give the file and line number", () => {
  const bad = (patch: object | string, re: RegExp, opts = {}) => {
    const line = typeof patch === "string" ? patch : JSON.stringify({ ...good, ...patch });
    let err: unknown;
    try {
      parsePromptsJsonl(`${promptToJsonLine(good)}\n\n${line}\n`, "f.jsonl", opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PromptFileError);
    expect((err as Error).message).toMatch(new RegExp(`^f\\.jsonl:3: ${re.source}`));
  };
  bad("{not json", /invalid JSON/);
  bad("[1]", /expected a JSON object/);
  bad({ input_ids: undefined }, /missing "input_ids"/);
  bad({ input_ids: [] }, /"input_ids" is empty/);
  bad({ input_ids: [5, -1, 6, 11, 7, 8] }, /"input_ids"\[1\] = -1 is not a non-negative integer/);
  bad({ input_ids: [5, 10, 6, 11, 7, 1.5] }, /"input_ids"\[5\] = 1.5 is not a non-negative integer/);
  bad({ label_token_ids: [10, 10] }, /"label_token_ids" has a repeated id/);
  bad({ label: 2 }, /"label" = 2 must be an integer in \[0, 2\) or -1/);
  bad({ label: "1" }, /"label" = "1" must be an integer/);
  bad({ label_positions: [3, 1], correct_positions: [3] }, /"label_positions" must be strictly increasing \(3, 1\)/);
  bad({ label_positions: [1, 5], correct_positions: [] }, /"label_positions"\[1\] = 5 is not before the last position 5/);
  bad({ label_positions: [1, 2], correct_positions: [] }, /"label_positions"\[1\] = 2 holds token 6, not a label token \(10, 11\)/);
  bad({ correct_positions: [1] }, /"correct_positions" = \[1\] but the label positions holding label 1's token are \[3\]/);
  bad({ label: -1 }, /"correct_positions" = \[3\] but the label positions holding label -1's token are \[\]/);
  bad({ input_ids: [5, 10, 6, 11, 7, 99] }, /"input_ids"\[5\] = 99 is outside the vocabulary \(50\)/, { vocabSize: 50 });
});
