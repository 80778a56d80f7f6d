// Batched evaluation equals one-prompt-at-a-time evaluation: the same predictions and label logits
// (padding never reaches valid tokens), on babygpt2 with real SST-2 prompts of different lengths.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { buildModel } from "../../models/registry.ts";
import { predict } from "../../src/eval/evaluate.ts";
import { buildStandardSets, PromptBuilder } from "../../src/icl/prompts.ts";
import { loadTaskData, resolveTask, withDataPath } from "../../src/icl/tasks.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { gpuRuntime, SHARED } from "../helpers.ts";

test("accuracy and label logits of a batched evaluation equal one prompt at a time", async () => {
  const rt = await gpuRuntime();
  const dir = join(SHARED, "models", "babygpt2");
  const ck = Checkpoint.open(dir);
  const model = buildModel(rt, loadConfig(dir), ck);
  ck.close();
  const task = withDataPath(resolveTask("trec"), join(SHARED, "data")); // 6 labels
  const sets = buildStandardSets(new PromptBuilder(loadTokenizer(dir), task), await loadTaskData(task), 3, { testQueries: 3, trainPrompts: 1 });
  const prompts = sets.test;
  expect(new Set(prompts.map((p) => p.input_ids.length)).size).toBeGreaterThan(1);
  const batched = await predict(model, prompts, { microBatch: prompts.length });
  const single = await predict(model, prompts, { microBatch: 1 });
  expect(batched.predicted).toEqual(single.predicted);
  prompts.forEach((_, i) => {
    const scale = Math.max(...single.labelLogits[i].map(Math.abs));
    batched.labelLogits[i].forEach((x, j) => expect(Math.abs(x - single.labelLogits[i][j])).toBeLessThan(1e-5 * scale));
  });
  model.dispose();
});
