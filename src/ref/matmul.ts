// CPU reference for kernels/matmul_forward.wgsl, matmul_backward_input.wgsl and
// matmul_backward_weight.wgsl, in float64: plain loops, nn.Linear layout (weight [N, K]).
// Batched: batch b uses inp + b·M·K, out + b·M·N, and weight + b·N·K, bias + b·N (or the same
// weight and bias for every batch when sharedW). 16-bit weights are given here already decoded
// (src/ref/dtype.ts unpackHalves), so the reference sees exactly the values the kernel sees.

export interface RefMatmulDims {
  M: number;
  N: number;
  K: number;
  batch?: number;
  sharedW?: boolean;
}

/** out [batch, M, N] = inp [batch, M, K] · weight [N, K]ᵀ (+ bias [N]) */
export function matmulForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  { M, N, K, batch = 1, sharedW = false }: RefMatmulDims,
): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const wb = sharedW ? 0 : b;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = bias ? bias[wb * N + n] : 0;
        for (let k = 0; k < K; k++) s += inp[(b * M + m) * K + k] * weight[(wb * N + n) * K + k];
        out[(b * M + m) * N + n] = s;
      }
    }
  }
  return out;
}

/**
 * Gradients of loss = sum(out * dout) (fresh, not accumulated):
 *   dinp [batch, M, K] = dout · weight
 *   dweight [N, K] (per batch unless sharedW) = Σ doutᵀ · inp
 *   dbias [N] (per batch unless sharedW) = column sums of dout
 */
export function matmulBackward(
  dout: ArrayLike<number>,
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  { M, N, K, batch = 1, sharedW = false }: RefMatmulDims,
): { dinp: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const wBatches = sharedW ? 1 : batch;
  const dinp = new Float64Array(batch * M * K);
  const dweight = new Float64Array(wBatches * N * K);
  const dbias = new Float64Array(wBatches * N);
  for (let b = 0; b < batch; b++) {
    const wb = sharedW ? 0 : b;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const d = dout[(b * M + m) * N + n];
        dbias[wb * N + n] += d;
        for (let k = 0; k < K; k++) {
          dinp[(b * M + m) * K + k] += d * weight[(wb * N + n) * K + k];
          dweight[(wb * N + n) * K + k] += d * inp[(b * M + m) * K + k];
        }
      }
    }
  }
  return { dinp, dweight, dbias };
}
