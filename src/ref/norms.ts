// CPU references for kernels/layernorm_*.wgsl and kernels/rmsnorm_*.wgsl, in float64.
// Rows of C channels; inp is (N, C) row-major with N = B*T. Gradients of the loss
// sum(out * dout): backward returns dinp (as if written), dweight and dbias (summed over rows).

/** GPT-2 LayerNorm (biased variance). inp (N, C), weight (C), bias (C) -> out (N, C), mean (N), rstd (N). */
export function layernormForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[base + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (inp[base + c] - m) ** 2;
    const s = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) out[base + c] = (inp[base + c] - m) * s * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = s;
  }
  return { out, mean, rstd };
}

/** dout, inp (N, C); weight (C); mean, rstd (N) from the forward -> dinp (N, C), dweight (C), dbias (C). */
export function layernormBackward(
  dout: ArrayLike<number>,
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  N: number,
  C: number,
): { dinp: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const dinp = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  const dbias = new Float64Array(C);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    let dnormMean = 0;
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (inp[base + c] - mean[r]) * rstd[r];
      const dnorm = weight[c] * dout[base + c];
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (inp[base + c] - mean[r]) * rstd[r];
      const dnorm = weight[c] * dout[base + c];
      dinp[base + c] = (dnorm - dnormMean - norm * dnormNormMean) * rstd[r];
      dweight[c] += dout[base + c] * norm;
      dbias[c] += dout[base + c];
    }
  }
  return { dinp, dweight, dbias };
}

/** Llama/Qwen2 RMSNorm. inp (N, C), weight (C) -> out (N, C) = weight * inp * rstd, rstd (N). */
export function rmsnormForward(
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    let ms = 0;
    for (let c = 0; c < C; c++) ms += inp[base + c] ** 2;
    const s = 1 / Math.sqrt(ms / C + eps);
    for (let c = 0; c < C; c++) out[base + c] = weight[c] * (inp[base + c] * s);
    rstd[r] = s;
  }
  return { out, rstd };
}

/** dout, inp (N, C); weight (C); rstd (N) from the forward -> dinp (N, C), dweight (C). */
export function rmsnormBackward(
  dout: ArrayLike<number>,
  inp: ArrayLike<number>,
  weight: ArrayLike<number>,
  rstd: ArrayLike<number>,
  N: number,
  C: number,
): { dinp: Float64Array; dweight: Float64Array } {
  const dinp = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    // d rstd / d inp[c] = -rstd^3 * inp[c] / C
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) dnormNormMean += weight[c] * dout[base + c] * inp[base + c] * rstd[r];
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = inp[base + c] * rstd[r];
      dinp[base + c] = (weight[c] * dout[base + c] - norm * dnormNormMean) * rstd[r];
      dweight[c] += dout[base + c] * norm;
    }
  }
  return { dinp, dweight };
}
