// CPU reference for kernels/abft_loss_forward.wgsl and kernels/abft_loss_backward.wgsl, in float64
// (../shared/docs/abft-method.md section 3). att [B, NH, T]; labelPos, correct [B, K]; threshold [B].
import type { AbftCoefs, AbftLossDims } from "../ops/abft_loss.ts";

export interface AbftLossRef {
  /** [B, NH] per-head loss, 0 for heads that fail the filter */
  loss: Float64Array;
  /** [B, NH] 1 for induction heads (or every head without the filter), else 0 */
  mask: Float64Array;
  /** [B, NH] attention on the label positions */
  S: Float64Array;
}

export function abftLossForward(
  att: ArrayLike<number>,
  labelPos: ArrayLike<number>,
  correct: ArrayLike<number>,
  threshold: ArrayLike<number>,
  d: AbftLossDims,
  coef: AbftCoefs & { filter: boolean },
): AbftLossRef {
  const { B, NH, T, K } = d;
  const loss = new Float64Array(B * NH), mask = new Float64Array(B * NH), S = new Float64Array(B * NH);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const row = (b * NH + h) * T;
      let sum = 0, wrong = 0, right = 0;
      for (let k = 0; k < K; k++) {
        const t = labelPos[b * K + k];
        const a = t < T ? att[row + t] : 0;
        sum += a;
        if (correct[b * K + k]) right += 1 - a;
        else wrong += a;
      }
      const on = !coef.filter || sum > threshold[b] ? 1 : 0;
      S[b * NH + h] = sum;
      mask[b * NH + h] = on;
      loss[b * NH + h] = on * (coef.A * wrong + coef.B * right);
    }
  }
  return { loss, mask, S };
}

/** d(scale · Σ loss)/d att for fixed masks: [B, NH, T]. */
export function abftLossBackward(
  mask: ArrayLike<number>,
  labelPos: ArrayLike<number>,
  correct: ArrayLike<number>,
  d: AbftLossDims,
  coef: AbftCoefs & { scale: number },
): Float64Array {
  const { B, NH, T, K } = d;
  const datt = new Float64Array(B * NH * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      if (!mask[b * NH + h]) continue;
      for (let k = 0; k < K; k++) {
        const t = labelPos[b * K + k];
        if (t >= T) continue;
        datt[(b * NH + h) * T + t] += coef.scale * (correct[b * K + k] ? -coef.B : coef.A);
      }
    }
  }
  return datt;
}
