// Decoding of 16-bit weight values packed two per u32 word (little-endian, as safetensors: element
// 2j in the low 16 bits of word j). Pure functions, no bindings.
//   dtype 1: bf16, value = bitcast<f32>(bits << 16)
//   dtype 2: f16 via unpack2x16float (core WGSL: needs no shader-f16)
// (dtype 0, f32, is one value per word: bitcast<f32>(word); callers branch on it before loading,
// since its word index is e, not e / 2.)
// Included by lib/weights.wgsl (matmul and lm_head kernels) and lib/quantize.wgsl (quantize_nf4,
// quantize_int8).

// the value of element e (dtype 1 or 2) from w, the word e / 2 that holds it
fn unpackHalf(w: u32, e: u32, dtype: u32) -> f32 {
  let bits = (w >> ((e & 1u) * 16u)) & 0xffffu;
  if (dtype == 1u) {
    return bitcast<f32>(bits << 16u);
  }
  return unpack2x16float(bits).x;
}
