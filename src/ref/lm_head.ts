// CPU reference for kernels/lm_head_forward.wgsl and lm_head_backward.wgsl, in float64.
// h [M, C]; weight [V, C] (already decoded from bf16/f16, see src/ref/dtype.ts); rows [R] indices
// into h; cols [J] vocabulary ids, or null for all V columns.

/** logits [R, J] = h[rows] · weight[cols]ᵀ */
export function lmHeadForward(
  h: ArrayLike<number>,
  weight: ArrayLike<number>,
  rows: ArrayLike<number>,
  cols: ArrayLike<number> | null,
  C: number,
  V: number,
): Float64Array {
  const R = rows.length;
  const J = cols ? cols.length : V;
  const logits = new Float64Array(R * J);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < J; j++) {
      const v = cols ? cols[j] : j;
      let s = 0;
      for (let c = 0; c < C; c++) s += h[rows[r] * C + c] * weight[v * C + c];
      logits[r * J + j] = s;
    }
  }
  return logits;
}

/** dh [M, C] of loss = sum(logits * dlogits): zero except at the chosen rows (fresh, not accumulated) */
export function lmHeadBackward(
  dlogits: ArrayLike<number>,
  weight: ArrayLike<number>,
  rows: ArrayLike<number>,
  cols: ArrayLike<number> | null,
  M: number,
  C: number,
  V: number,
): Float64Array {
  const R = rows.length;
  const J = cols ? cols.length : V;
  const dh = new Float64Array(M * C);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < J; j++) {
      const v = cols ? cols[j] : j;
      const d = dlogits[r * J + j];
      for (let c = 0; c < C; c++) dh[rows[r] * C + c] += d * weight[v * C + c];
    }
  }
  return dh;
}
