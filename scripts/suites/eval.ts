// `bun run bench eval [--full] [--inputs N] [--micro-batch N] [--shapes a,b]`: test inputs per second of batched
// in-context evaluation (forward without gradients, LM head on the label tokens only):
// babygpt2 on real SST-2 prompts, and random-weight GPT-2 large / XL and Llama-3-8B on 160-token
// prompts. The target: 1024 SST-2 inputs on GPT-2 XL shapes in under 10 s on an H100.
import { join } from "node:path";
import { buildModel } from "../../models/registry.ts";
import type { LanguageModel } from "../../models/common.ts";
import { predict } from "../../src/eval/evaluate.ts";
import { getRuntime } from "../../src/gpu/runtime.ts";
import { buildStandardSets, PromptBuilder, type IclPrompt } from "../../src/icl/prompts.ts";
import { loadTaskData, resolveTask, withDataPath } from "../../src/icl/tasks.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { randomSource, shapeConfig } from "../lib/random_model.ts";
import { listOption, numberOption } from "../lib/args.ts";
import { MiB, printTable, writeResults, type Row } from "../lib/report.ts";
import { syntheticPrompts } from "../lib/synthetic.ts";

const SHARED = join(import.meta.dir, "..", "..", "..", "shared");

export async function main(args: string[]): Promise<number> {
  const rt = await getRuntime();
  const full = args.includes("--full") || !rt.gpu.adapter.software;
  const inputs = numberOption(args, "--inputs", full ? 1024 : 16);
  const micro = numberOption(args, "--micro-batch", full ? 32 : 8);
  const rows: Row[] = [];
  const measure = async (name: string, model: LanguageModel, prompts: IclPrompt[]) => {
    // warm-up (pipelines, pooled buffers); skipped on a software adapter, where one pass of a large
    // model takes minutes and compiling the pipelines is a small part of it
    if (!rt.gpu.adapter.software) await predict(model, prompts.slice(0, Math.min(micro, prompts.length)), { microBatch: micro });
    rt.pool.resetPeak();
    const peak0 = rt.pool.stats.peak;
    const t0 = performance.now();
    await predict(model, prompts, { microBatch: micro });
    const s = (performance.now() - t0) / 1000;
    const meanLen = prompts.reduce((a, p) => a + p.input_ids.length, 0) / prompts.length;
    rows.push({ model: name, inputs: prompts.length, "mean tokens": meanLen, "micro-batch": micro, seconds: s, "inputs/s": prompts.length / s, "activation peak MiB": (rt.pool.stats.peak - peak0) / MiB });
    console.error(`${name}: ${(prompts.length / s).toPrecision(3)} inputs/s`);
  };

  // babygpt2 on real SST-2 prompts
  const baby = join(SHARED, "models", "babygpt2");
  const ckpt = Checkpoint.open(baby);
  const model = buildModel(rt, loadConfig(baby), ckpt);
  ckpt.close();
  const task = withDataPath(resolveTask("sst2"), join(SHARED, "data"));
  const sets = buildStandardSets(new PromptBuilder(loadTokenizer(baby), task), await loadTaskData(task), 0, { testQueries: Math.ceil(inputs / 2) });
  await measure("babygpt2 (sst2)", model, sets.test.slice(0, inputs));
  model.dispose();

  const DTYPE: Record<string, "F32" | "BF16"> = { "gpt2-large": "F32", "gpt2-xl": "F32", "llama-3-8b": "BF16" };
  for (const name of listOption(args, "--shapes", full ? Object.keys(DTYPE) : [], Object.keys(DTYPE))) {
    const c = shapeConfig(name);
    const m = buildModel(rt, c, randomSource(c, DTYPE[name]));
    await measure(`${name} (random, ${DTYPE[name]})`, m, syntheticPrompts(inputs, 160, c.vocabSize));
    m.dispose();
    rt.pool.trim();
  }
  printTable("bench eval", rt, rows);
  writeResults("eval", rt, rows);
  return 0;
}
