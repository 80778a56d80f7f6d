// In-context prediction on the GPU: batched forward passes without gradients, the LM head only
// for the label tokens at each prompt's last position, argmax over the labels.
// Prompts are grouped into micro-batches of similar length (sorted by length) to waste little on
// padding; results come back in the prompts' own order. A prompt's result does not depend on the
// batch it ran in (padding never reaches valid tokens), which the tests check.
import { makeBatch, type LanguageModel } from "../../models/common.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { noGrad } from "../tensor/autodiff.ts";
import { lmHead } from "../tensor/ops.ts";
import { fromArray, scope } from "../tensor/tensor.ts";
import { argmax, softmax } from "./metrics.ts";

export interface Predictions {
  /** [n][L] the label tokens' logits at the last position */
  labelLogits: number[][];
  /** [n][L] softmax over the label tokens */
  labelProbs: number[][];
  /** argmax label index per prompt */
  predicted: number[];
}

export interface EvalOptions {
  /** prompts per forward pass (default 16) */
  microBatch?: number;
  /** called after each micro-batch with the number of prompts done */
  onProgress?: (done: number, total: number) => void;
}

/** Label logits, probabilities and predictions for every prompt. */
export async function predict(model: LanguageModel, prompts: readonly IclPrompt[], opts: EvalOptions = {}): Promise<Predictions> {
  const n = prompts.length;
  const out: Predictions = { labelLogits: new Array(n), labelProbs: new Array(n), predicted: new Array(n) };
  if (n === 0) return out;
  const micro = Math.max(1, opts.microBatch ?? 16);
  const order = [...prompts.keys()].sort((a, b) => prompts[a].input_ids.length - prompts[b].input_ids.length);
  const rt = model.headWeight().rt;
  let done = 0;
  for (let start = 0; start < n; start += micro) {
    const idx = order.slice(start, start + micro);
    const group = idx.map((i) => prompts[i]);
    const L = group[0].label_token_ids.length;
    const sameLabels = group.every((p) => p.label_token_ids.join() === group[0].label_token_ids.join());
    const logits = await noGrad(async () => {
      const batch = makeBatch(rt, group.map((p) => p.input_ids), model.config.maxPositions);
      const t = scope(() => {
        const res = model.forward(batch);
        const rows = fromArray(rt, Uint32Array.from(batch.lengths, (len, b) => b * batch.T + len - 1), [batch.B], "last");
        // one column set for the whole batch when the prompts share their label tokens (the usual case)
        const cols = sameLabels
          ? fromArray(rt, Uint32Array.from(group[0].label_token_ids), [L], "label-cols")
          : fromArray(rt, Uint32Array.from(group.flatMap((p) => p.label_token_ids)), [group.length * L], "label-cols");
        const lg = lmHead(res.hidden, model.headWeight(), rows, cols);
        res.hidden.free();
        return lg;
      });
      const data = await t.toF32();
      t.free();
      for (const x of [batch.ids, batch.positions, batch.lengthsT]) x.free();
      return data;
    });
    const J = sameLabels ? L : group.length * L;
    group.forEach((p, b) => {
      const from = b * J + (sameLabels ? 0 : b * L);
      const ll = Array.from(logits.subarray(from, from + L));
      const i = idx[b];
      out.labelLogits[i] = ll;
      out.labelProbs[i] = Array.from(softmax(ll));
      out.predicted[i] = argmax(ll);
    });
    done += group.length;
    opts.onProgress?.(done, n);
  }
  return out;
}
