// CPU reference for kernels/embedding_forward.wgsl, in float64. Tables are given as numbers (16-bit
// tables decoded with src/ref/dtype.ts unpackHalves). Frozen embeddings: no backward.

/**
 * out[t, c] = wte[ids[t], c] + wpe[pos[t], c]   (wpe, pos optional)
 * ids, pos: [N]; wte: [V, C]; wpe: [P, C]; returns [N, C]
 */
export function embeddingForward(
  ids: ArrayLike<number>,
  wte: ArrayLike<number>,
  C: number,
  wpe?: ArrayLike<number>,
  pos?: ArrayLike<number>,
): Float64Array {
  const N = ids.length;
  const out = new Float64Array(N * C);
  for (let t = 0; t < N; t++) {
    for (let c = 0; c < C; c++) {
      let v = wte[ids[t] * C + c];
      if (wpe && pos) v += wpe[pos[t] * C + c];
      out[t * C + c] = v;
    }
  }
  return out;
}
