// The ABFT attention loss of one layer (kernels/abft_loss_forward.wgsl, abft_loss_backward.wgsl),
// see ../shared/docs/abft-method.md section 3. att is the last token's attention row of every head:
// [B, NH, T] for B prompts padded to T tokens.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface AbftLossDims {
  /** prompts */
  B: number;
  /** heads of the layer */
  NH: number;
  /** padded prompt length */
  T: number;
  /** label positions per prompt (the number of demonstrations k) */
  K: number;
}

/** Loss weights: A on attention to wrong labels, B on missing attention to correct labels. */
export interface AbftCoefs {
  A: number;
  B: number;
}

/** The induction-head threshold T = k / (k + ln n_t) of a prompt of nTokens tokens (natural log). */
export function inductionThreshold(k: number, nTokens: number): number {
  return k / (k + Math.log(nTokens));
}

export interface AbftLossForwardArgs {
  /** f32 [B, NH, T] */
  att: GpuBuffer;
  /** u32 [B, K] token positions of the demonstrations' label tokens */
  labelPos: GpuBuffer;
  /** u32 [B, K]: 1 where the label equals the query's label, else 0 */
  correct: GpuBuffer;
  /** f32 [B] per-prompt threshold (inductionThreshold) */
  threshold: GpuBuffer;
  /** f32 [B, NH] outputs: loss per head (0 for non-induction heads), head mask 0/1, label attention sum */
  loss: GpuBuffer;
  mask: GpuBuffer;
  S: GpuBuffer;
}

/** filter = false counts every head as an induction head (the "no head filter" ablation). */
export function abftLossForward(rt: Runtime, a: AbftLossForwardArgs, d: AbftLossDims, coef: AbftCoefs & { filter: boolean }): void {
  if (d.B * d.NH === 0) return;
  rt.dispatch("abft_loss_forward", {
    params: { B: d.B, NH: d.NH, T: d.T, K: d.K, useFilter: coef.filter ? 1 : 0, coefA: coef.A, coefB: coef.B },
    bind: { att: a.att, labelPos: a.labelPos, correct: a.correct, threshold: a.threshold, loss: a.loss, mask: a.mask, S: a.S },
    workgroups: grid1d(d.B * d.NH, 64),
  });
}

export interface AbftLossBackwardArgs {
  /** f32 [B, NH, T] out (written) */
  datt: GpuBuffer;
  labelPos: GpuBuffer;
  correct: GpuBuffer;
  /** f32 [B, NH] from abftLossForward */
  mask: GpuBuffer;
}

/** datt = gradient of scale · Σ loss (scale e.g. 1/pseudo-batch), masks held fixed. */
export function abftLossBackward(rt: Runtime, a: AbftLossBackwardArgs, d: AbftLossDims, coef: AbftCoefs & { scale: number }): void {
  if (d.B * d.NH * d.T === 0) return;
  rt.dispatch("abft_loss_backward", {
    params: { B: d.B, NH: d.NH, T: d.T, K: d.K, coefA: coef.A, coefB: coef.B, scale: coef.scale },
    bind: { datt: a.datt, labelPos: a.labelPos, correct: a.correct, mask: a.mask },
    workgroups: grid1d(d.B * d.NH * d.T, 256),
  });
}
