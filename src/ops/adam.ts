// Adam optimizer step (kernels/adam_update.wgsl): PyTorch's Adam without weight decay or amsgrad,
// with 1 − β and the bias corrections 1 − β^t computed here in float64.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface AdamConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** The paper's setting (../shared/docs/abft-method.md section 4), lr for full W_Q/W_K. */
export const ADAM_DEFAULTS: AdamConfig = { lr: 2e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export interface AdamBuffers {
  /** f32 [N], updated in place */
  param: GpuBuffer;
  /** f32 [N], read only (scaled by gradScale) */
  grad: GpuBuffer;
  /** f32 [N] first and second moments, zero before step 1, updated in place */
  m: GpuBuffer;
  v: GpuBuffer;
}

/**
 * One Adam step `t` (1-based) over N floats. gradScale multiplies the gradient first (e.g.
 * 1/pseudo-batch when grads were summed over the pseudo-batch).
 */
export function adamUpdate(rt: Runtime, b: AdamBuffers, N: number, t: number, cfg: AdamConfig, gradScale = 1): void {
  if (!(Number.isInteger(t) && t >= 1)) throw new Error(`adamUpdate: step t must be an integer >= 1, got ${t}`);
  if (N === 0) return;
  rt.dispatch("adam_update", {
    params: {
      N,
      lr: cfg.lr,
      beta1: cfg.beta1,
      beta2: cfg.beta2,
      oneMinusBeta1: 1 - cfg.beta1,
      oneMinusBeta2: 1 - cfg.beta2,
      eps: cfg.eps,
      bc1: 1 - cfg.beta1 ** t,
      bc2: 1 - cfg.beta2 ** t,
      gradScale,
    },
    bind: { param: b.param, grad: b.grad, m: b.m, v: b.v },
    workgroups: grid1d(N, 256),
  });
}
