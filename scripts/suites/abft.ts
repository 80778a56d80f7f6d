// `bun run bench abft [--full] [--micro-batch N] [--steps N]`: ms per ABFT training sample
// (forward keeping every layer's last-row attention + backward into W_Q/W_K of every layer,
// pseudo-batch 32, 160-token prompts; every head counts, so the backward always runs) for
// random-weight models with the shapes of GPT-2 124M, large, XL and Llama-3-8B (bf16 weights),
// and the peak GPU memory of abft's own allocations (weights included).
// PyTorch 2.11 + HF transformers on an H100, one sample at a time (issue 6): 26.8 / 85.3 / 101.4 /
// 84.0 ms per sample; 17.3 GiB for Llama-3-8B.
import { buildModel } from "../../models/registry.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer } from "../../src/abft/train.ts";
import { getRuntime } from "../../src/gpu/runtime.ts";
import { randomSource, shapeConfig } from "../lib/random_model.ts";
import { numberOption } from "../lib/args.ts";
import { GiB, printTable, writeResults, type Row } from "../lib/report.ts";
import { syntheticPrompts } from "../lib/synthetic.ts";

const PYTORCH_MS: Record<string, number> = { "gpt2-124m": 26.8, "gpt2-large": 85.3, "gpt2-xl": 101.4, "llama-3-8b": 84.0 };

export async function main(args: string[]): Promise<number> {
  const rt = await getRuntime();
  const full = args.includes("--full") || !rt.gpu.adapter.software;
  const batch = full ? 32 : 2;
  const tokens = full ? 160 : 48;
  const micro = numberOption(args, "--micro-batch", full ? 8 : 2);
  const steps = numberOption(args, "--steps", 2);
  const shapes: [string, "F32" | "BF16"][] = full
    ? [["gpt2-124m", "F32"], ["gpt2-large", "F32"], ["gpt2-xl", "F32"], ["llama-3-8b", "BF16"]]
    : [["gpt2-124m", "BF16"]];
  const rows: Row[] = [];
  for (const [name, dtype] of shapes) {
    const c = shapeConfig(name);
    rt.pool.trim();
    rt.pool.resetPeak();
    const base = rt.pool.stats.peak;
    const model = buildModel(rt, c, randomSource(c, dtype));
    const prompts = syntheticPrompts(batch, tokens, c.vocabSize);
    const trainer = new Trainer(model, prompts, {
      objective: "abft", steps: steps + 1, batch, microBatch: micro, lr: 2e-5, A: 0.5, B: 1, pid: true,
      gains: PAPER_GAINS, headFilter: false, trainBias: false, seed: 1,
    });
    await trainer.step(); // warm-up: pipelines, pool
    let seconds = 0;
    for (let s = 0; s < steps; s++) seconds += (await trainer.step()).seconds;
    const msPerSample = (1000 * seconds) / (steps * batch);
    rows.push({
      model: name, weights: dtype, tokens, "pseudo-batch": batch, "micro-batch": micro, "ms/sample": msPerSample,
      "PyTorch ms/sample (H100)": PYTORCH_MS[name], "peak GPU GiB": (rt.pool.stats.peak - base) / GiB,
    });
    console.error(`${name}: ${msPerSample.toFixed(1)} ms/sample`);
    trainer.dispose();
    model.dispose();
  }
  printTable("bench abft", rt, rows);
  writeResults("abft", rt, rows);
  return 0;
}
