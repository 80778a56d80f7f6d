// `bun run bench quant [--full] [--format nf4|nf4dq|int8] [--micro-batch N]`: ABFT with LoRA (r 16,
// alpha 32) on W_Q/W_K over frozen 4-bit weights, for random-weight models with the shapes of
// Llama-3-8B and Qwen2.5-32B: abft's peak GPU memory (weights, adapters, Adam, activations) and ms per
// training sample at 160 tokens, pseudo-batch 32. Issue 7's target: the 32B shape within 24 GB.
import { buildModel } from "../../models/registry.ts";
import { estimateMemory } from "../../src/abft/memory.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer } from "../../src/abft/train.ts";
import { getRuntime } from "../../src/gpu/runtime.ts";
import type { QuantFormat } from "../../src/ops/quant.ts";
import { randomSource, shapeConfig } from "../lib/random_model.ts";
import { numberOption, stringOption } from "../lib/args.ts";
import { GiB, printTable, writeResults, type Row } from "../lib/report.ts";
import { syntheticPrompts } from "../lib/synthetic.ts";

export async function main(args: string[]): Promise<number> {
  const rt = await getRuntime();
  const full = args.includes("--full") || !rt.gpu.adapter.software;
  const format = stringOption(args, "--format", "nf4") as QuantFormat;
  const batch = full ? 32 : 2;
  const tokens = full ? 160 : 48;
  const micro = numberOption(args, "--micro-batch", full ? 4 : 2);
  const shapes = full ? ["llama-3-8b", "qwen2.5-32b"] : ["gpt2-124m"];
  const rows: Row[] = [];
  for (const name of shapes) {
    const c = shapeConfig(name);
    rt.pool.trim();
    rt.pool.resetPeak();
    const base = rt.pool.stats.peak;
    const t0 = performance.now();
    const model = buildModel(rt, c, randomSource(c, "BF16"), { quant: format, lora: true });
    await rt.sync();
    const loadS = (performance.now() - t0) / 1000;
    const weightsGiB = (rt.pool.stats.inUse - base) / GiB;
    const trainer = new Trainer(model, syntheticPrompts(batch, tokens, c.vocabSize), {
      objective: "abft", steps: 3, batch, microBatch: micro, lr: 1e-4, A: 0.5, B: 1, pid: true, gains: PAPER_GAINS,
      headFilter: false, trainBias: false, seed: 1, lora: { r: 16, alpha: 32 },
    });
    await trainer.step(); // warm-up
    const rec = await trainer.step();
    const est = estimateMemory(c, { format, loraRank: 16, tokens, microBatch: micro, head: true, storedBytes: 2 });
    rows.push({
      model: name, format, "load s": loadS, "weights GiB": weightsGiB, tokens, "micro-batch": micro,
      "ms/sample": (1000 * rec.seconds) / batch, "peak GPU GiB": (rt.pool.stats.peak - base) / GiB, "estimate GiB": est.total / GiB,
    });
    console.error(`${name}: ${((1000 * rec.seconds) / batch).toFixed(1)} ms/sample, peak ${((rt.pool.stats.peak - base) / GiB).toFixed(2)} GiB`);
    trainer.dispose();
    model.dispose();
  }
  printTable("bench quant", rt, rows);
  writeResults("quant", rt, rows);
  return 0;
}
