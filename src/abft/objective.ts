// The ABFT objective (../shared/docs/abft-method.md section 3) and the E2E baseline's, on a batch.
//
// ABFT: for every layer and query head, α = the last token's attention row; the head counts iff
// S = Σ_{j∈I} α_j > T (T = k/(k + ln n_t) per prompt, or a fixed --threshold, or every head with
// the filter off); its loss is A·Σ_{I−} α + B·Σ_{I+} (1 − α); the sample loss sums over layers and
// heads. No LM head is computed. E2E: cross-entropy of the full-vocabulary softmax at the last
// position against the correct label token.
// Both return per-prompt numbers on the host and leave the tape ready for backward() with
// `seeds` (the mean over the pseudo-batch is taken by the caller's seed scale).
import type { Batch, LanguageModel } from "../../models/common.ts";
import { inductionThreshold } from "../ops/abft_loss.ts";
import { abftLossPack } from "../ops/abft_loss_pack.ts";
import type { Grad } from "../tensor/autodiff.ts";
import { abftLoss, crossEntropy, lmHead } from "../tensor/ops.ts";
import { fromArray, scope, type Tensor } from "../tensor/tensor.ts";

/** One training prompt's label bookkeeping (token positions in its own sequence). */
export interface LabelInfo {
  /** token positions of the k demonstrations' label tokens */
  labelPositions: number[];
  /** the subset of labelPositions whose label equals the query's */
  correctPositions: number[];
  /** the correct label's token id (E2E target) */
  targetToken: number;
}

export interface AbftSettings {
  A: number;
  B: number;
  /** recompute each block's activations in the backward (activation checkpointing) */
  recompute?: boolean;
  /** false: every head counts (the "no head filter" ablation) */
  headFilter: boolean;
  /** a fixed threshold instead of k/(k + ln n_t) */
  threshold?: number;
}

export interface ObjectiveResult {
  /** per prompt: the summed loss */
  loss: number[];
  /** per prompt: the number of heads (all layers) that passed the filter */
  inductionHeads: number[];
  /** per layer [B*NH] head masks and label-attention sums (for statistics and figures) */
  masks: Float32Array[];
  S: Float32Array[];
  /** what backward() needs: each loss tensor with the seed it gets (scale · Σ) */
  seeds: (scale: number) => { tensor: Tensor; grad: Grad }[];
  /** frees the loss tensors (call after backward) */
  dispose: () => void;
}

/** The per-prompt thresholds T = k/(k + ln n_t) (or the fixed one). */
export function thresholds(batch: Batch, labels: LabelInfo[], s: AbftSettings): Float32Array {
  return Float32Array.from(labels, (l, b) => s.threshold ?? inductionThreshold(l.labelPositions.length, batch.lengths[b]));
}

export async function abftObjective(model: LanguageModel, batch: Batch, labels: LabelInfo[], s: AbftSettings): Promise<ObjectiveResult> {
  const { B } = batch;
  const K = labels[0].labelPositions.length;
  if (labels.some((l) => l.labelPositions.length !== K)) throw new Error("ABFT: every prompt of a batch needs the same number of demonstrations");
  const NH = model.config.nHeads;
  const rt = batch.ids.rt;
  const lossT = scope(() => {
    const labelPos = new Uint32Array(B * K);
    const correct = new Uint32Array(B * K);
    labels.forEach((l, b) => {
      l.labelPositions.forEach((p, i) => {
        labelPos[b * K + i] = p;
        correct[b * K + i] = l.correctPositions.includes(p) ? 1 : 0;
      });
    });
    const inputs = {
      labelPos: fromArray(rt, labelPos, [B, K], "labelPos"),
      correct: fromArray(rt, correct, [B, K], "correct"),
      threshold: fromArray(rt, thresholds(batch, labels, s), [B], "threshold"),
      K,
    };
    const res = model.forward(batch, { attLast: true, recompute: s.recompute });
    res.hidden.free();
    const out = res.attLast.map((att) => abftLoss(att, inputs, { A: s.A, B: s.B, filter: s.headFilter }));
    for (const a of res.attLast) a.free();
    return out;
  });
  // every layer's loss, mask and S [B, NH] gathered into one [L, 3, B, NH] buffer: one readback
  // (one GPU round trip) per call instead of three per layer
  const N = B * NH;
  let all: Float32Array = new Float32Array(0);
  if (lossT.length * N > 0) {
    const packed = rt.pool.acquire(lossT.length * 3 * N * 4, "abft-stats");
    try {
      lossT.forEach((l, layer) => abftLossPack(rt, packed, { loss: l.loss.buf, mask: l.mask.buf, S: l.S.buf }, { N, layer }));
      all = await rt.readF32(packed, lossT.length * 3 * N);
    } finally {
      rt.pool.release(packed);
    }
  }
  const loss = new Array(B).fill(0);
  const inductionHeads = new Array(B).fill(0);
  const masks: Float32Array[] = [];
  const S: Float32Array[] = [];
  lossT.forEach((l, layer) => {
    const base = layer * 3 * N;
    const lv = all.subarray(base, base + N);
    const mv = all.slice(base + N, base + 2 * N);
    const sv = all.slice(base + 2 * N, base + 3 * N);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < NH; h++) {
        loss[b] += lv[b * NH + h];
        inductionHeads[b] += mv[b * NH + h];
      }
    }
    masks.push(mv);
    S.push(sv);
    l.mask.free();
    l.S.free();
  });
  return {
    loss,
    inductionHeads,
    masks,
    S,
    seeds: (scale) => lossT.filter((l) => l.loss.requiresGrad).map((l) => ({ tensor: l.loss, grad: scale })),
    dispose: () => lossT.forEach((l) => l.loss.free()),
  };
}

/** E2E: cross-entropy at each prompt's last token against its correct label token. */
export async function e2eObjective(model: LanguageModel, batch: Batch, labels: LabelInfo[], recompute = false): Promise<ObjectiveResult> {
  const { B, T } = batch;
  const r = batch.ids.rt;
  const lossT = scope(() => {
    const res = model.forward(batch, { recompute });
    const rows = fromArray(r, Uint32Array.from(batch.lengths, (n, b) => b * T + n - 1), [B], "last-rows");
    const logits = lmHead(res.hidden, model.headWeight(), rows); // [B, V]
    res.hidden.free();
    const targets = fromArray(r, Uint32Array.from(labels, (l) => l.targetToken), [B], "targets");
    return crossEntropy(logits, targets);
  });
  const loss = Array.from(await lossT.toF32());
  return {
    loss,
    inductionHeads: new Array(B).fill(0),
    masks: [],
    S: [],
    seeds: (scale) => (lossT.requiresGrad ? [{ tensor: lossT, grad: scale }] : []),
    dispose: () => lossT.free(),
  };
}
