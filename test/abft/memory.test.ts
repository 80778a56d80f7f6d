// The GPU memory estimate (src/abft/memory.ts) against what a run really holds, on a small
// Qwen2-shaped random model in NF4 with LoRA (the configuration of the paper's large models, whose
// fit in 24 GB rests on this estimate): the weights term equals the bytes the loaded model holds,
// and the per-prompt terms bound the memory that one more prompt per pass costs, without more than
// doubling it (a looser estimate would shrink the micro-batch for nothing). Measured with the
// buffer pool's footprint (in use + pooled), the memory abft holds on the GPU.
import { expect, test } from "bun:test";
import { buildModel } from "../../models/registry.ts";
import type { LanguageModel } from "../../models/common.ts";
import { estimateMemory } from "../../src/abft/memory.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer } from "../../src/abft/train.ts";
import type { Runtime } from "../../src/gpu/runtime.ts";
import { parseConfig } from "../../src/io/config.ts";
import { randomSource } from "../../scripts/lib/random_model.ts";
import { syntheticPrompts } from "../../scripts/lib/synthetic.ts";
import { gpuRuntime } from "../helpers.ts";

const config = parseConfig(
  {
    model_type: "qwen2", vocab_size: 3001, hidden_size: 256, intermediate_size: 704, num_hidden_layers: 3,
    num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 1024, rms_norm_eps: 1e-6,
    rope_theta: 1000000, hidden_act: "silu", tie_word_embeddings: false, torch_dtype: "bfloat16",
  },
  "qwen2-small",
);
const TOKENS = 160;
const MiB = 2 ** 20;

/** Peak pool footprint (bytes above `base`) of two ABFT + LoRA steps with `micro` prompts per pass. */
async function stepPeak(rt: Runtime, model: LanguageModel, micro: number, recompute: boolean, base: number): Promise<number> {
  rt.pool.trim();
  rt.pool.resetPeak();
  const trainer = new Trainer(model, syntheticPrompts(micro, TOKENS, config.vocabSize), {
    objective: "abft", steps: 2, batch: micro, microBatch: micro, lr: 1e-4, A: 0.5, B: 1, pid: true, gains: PAPER_GAINS,
    headFilter: false, trainBias: false, seed: 1, lora: { r: 16, alpha: 32 }, recompute,
  });
  await trainer.step();
  await trainer.step();
  const peak = rt.pool.stats.peak - base;
  trainer.dispose();
  return peak;
}

test("the memory estimate matches the loaded weights and bounds the per-prompt memory of ABFT + LoRA on NF4", async () => {
  const rt = await gpuRuntime();
  rt.pool.trim();
  const base = rt.pool.stats.inUse;
  const model = buildModel(rt, config, randomSource(config, "BF16"), { quant: "nf4", lora: true });
  await rt.sync();
  rt.pool.trim(); // the full-precision copies quantized while loading
  const held = rt.pool.stats.inUse - base;
  try {
    const est = (micro: number, recompute: boolean) =>
      estimateMemory(config, { format: "nf4", loraRank: 16, tokens: TOKENS, microBatch: micro, head: true, storedBytes: 2, recompute });
    // weights: the estimate's formula is the bytes the model holds (within the 4-byte rounding of each buffer)
    expect(Math.abs(held - est(1, false).weights)).toBeLessThan(0.01 * est(1, false).weights);

    for (const recompute of [false, true]) {
      const one = await stepPeak(rt, model, 1, recompute, base);
      const three = await stepPeak(rt, model, 3, recompute, base);
      const perPrompt = (three - one) / 2;
      const e = est(1, recompute);
      const estPerPrompt = (e.activationsPerPrompt + e.workspacePerPrompt) * 1.25;
      console.log(
        `memory (${recompute ? "recompute" : "no recompute"}): weights ${(held / MiB).toFixed(2)} MiB (estimate ${(e.weights / MiB).toFixed(2)}), ` +
          `per prompt ${(perPrompt / MiB).toFixed(2)} MiB measured, ${(estPerPrompt / MiB).toFixed(2)} MiB estimated; ` +
          `3 prompts: ${(three / MiB).toFixed(1)} MiB measured, ${((est(3, recompute).total - e.overhead) / MiB).toFixed(1)} MiB estimated (without the fixed overhead)`,
      );
      expect(perPrompt).toBeGreaterThan(0);
      expect(estPerPrompt).toBeGreaterThanOrEqual(perPrompt);
      expect(estPerPrompt).toBeLessThanOrEqual(2 * perPrompt);
      // the whole run: weights + adapters + Adam + activations under the estimate
      expect(three).toBeLessThanOrEqual(est(3, recompute).total - e.overhead);
    }
  } finally {
    model.dispose();
  }
});
