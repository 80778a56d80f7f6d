// Per-layer attention statistics of the last token over the label tokens (paper Fig. 4 and 5):
// for each layer, the mean over prompts and heads of S (attention on all label tokens) and of the
// attention on the correct labels' tokens, and the mean number of heads passing the filter.
import { makeBatch, type LanguageModel } from "../../models/common.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { inductionThreshold } from "../ops/abft_loss.ts";
import { noGradAsync } from "../tensor/autodiff.ts";
import { scope } from "../tensor/tensor.ts";

export interface LayerAttentionStats {
  layer: number;
  inductionAttention: number;
  correctAttention: number;
  inductionHeads: number;
}

export async function attentionStats(
  model: LanguageModel,
  prompts: readonly IclPrompt[],
  opts: { microBatch?: number; threshold?: number } = {},
): Promise<{ layers: LayerAttentionStats[]; prompts: number }> {
  const { nLayers: L, nHeads: NH } = model.config;
  const sums = Array.from({ length: L }, (_, layer) => ({ layer, inductionAttention: 0, correctAttention: 0, inductionHeads: 0 }));
  const rt = model.headWeight().rt;
  const micro = opts.microBatch ?? 16;
  for (let start = 0; start < prompts.length; start += micro) {
    const group = prompts.slice(start, start + micro);
    await noGradAsync(async () => {
      const batch = makeBatch(rt, group.map((p) => p.input_ids), model.config.maxPositions);
      const att = scope(() => {
        const res = model.forward(batch, { attLast: true });
        res.hidden.free();
        return res.attLast;
      });
      const T = batch.T;
      for (const [l, t] of att.entries()) {
        const a = await t.toF32(); // [B, NH, T]
        t.free();
        group.forEach((p, b) => {
          const thr = opts.threshold ?? inductionThreshold(p.label_positions.length, p.input_ids.length);
          for (let h = 0; h < NH; h++) {
            const row = (b * NH + h) * T;
            let S = 0;
            let correct = 0;
            for (const pos of p.label_positions) S += a[row + pos];
            for (const pos of p.correct_positions) correct += a[row + pos];
            sums[l].inductionAttention += S;
            sums[l].correctAttention += correct;
            if (S > thr) sums[l].inductionHeads += 1;
          }
        });
      }
      for (const x of [batch.ids, batch.positions, batch.lengthsT]) x.free();
    });
  }
  const n = prompts.length;
  return {
    prompts: n,
    layers: sums.map((s) => ({
      layer: s.layer,
      inductionAttention: s.inductionAttention / (n * NH),
      correctAttention: s.correctAttention / (n * NH),
      inductionHeads: s.inductionHeads / n,
    })),
  };
}
