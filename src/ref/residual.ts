// CPU reference for kernels/residual_forward.wgsl, in float64.

/** out[i] = a[i] + b[i] */
export function residualForward(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}
