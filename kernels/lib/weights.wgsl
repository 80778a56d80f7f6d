// Reads of a frozen weight bound as array<u32> in f32, bf16 or f16 (Params.dtype 0/1/2; packing in
// lib/dtype.wgsl). Element indices e run over the whole buffer, so odd row lengths are fine.
// A uniform branch on p.dtype rather than an override constant: one pipeline serves all three.
// The includer declares `weight: array<u32>` and a Params struct `p` with a u32 field `dtype`.
// Included by matmul_forward, matmul_backward_input, lm_head_forward, lm_head_backward.

//!include lib/dtype.wgsl

// weight element e as f32
fn weightAt(e: u32) -> f32 {
  if (p.dtype == 0u) {
    return bitcast<f32>(weight[e]);
  }
  return unpackHalf(weight[e >> 1u], e, p.dtype);
}

// weight element e, or 0 when !ok (a guarded tile load)
fn weightIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return weightAt(e);
  }
  return 0.0;
}
