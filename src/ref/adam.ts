// CPU reference for kernels/adam_update.wgsl, in float64: torch.optim.Adam's single-tensor step
// (no weight decay, no amsgrad). No backward: it is the optimizer.
import type { AdamConfig } from "../ops/adam.ts";

/** One step t (1-based), updating param, m and v ([N] each) in place with g = grad · gradScale. */
export function adamUpdate(
  param: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  t: number,
  cfg: AdamConfig,
  gradScale = 1,
): void {
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * gradScale;
    m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g;
    v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g * g;
    const mhat = m[i] / bc1;
    const vhat = v[i] / bc2;
    param[i] -= (cfg.lr * mhat) / (Math.sqrt(vhat) + cfg.eps);
  }
}
