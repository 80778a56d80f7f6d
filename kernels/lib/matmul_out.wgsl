// Inputs and outputs of the forward products out = inp · Wᵀ + bias (out [rows, N], rows of N
// floats): the guarded inp load, the optional bias and the bounded store of 4 outputs.
// The includer declares `inp`, `bias` (read) and `out` (read_write), all array<f32>, and Params `p`
// with u32 fields N and hasBias. Included by matmul_forward and matmul_quant_forward.

// inp[e], or 0 when !ok (a guarded tile load)
fn inpAt(e: u32, ok: bool) -> f32 {
  if (ok) {
    return inp[e];
  }
  return 0.0;
}

// bias[base + n] for an output column n, 0 past N or without a bias
fn biasAt(n: u32, base: u32) -> f32 {
  if (p.hasBias != 0u && n < p.N) {
    return bias[base + n];
  }
  return 0.0;
}

// writes v to out[rowBase + col .. col + 3], the columns < N
fn store4(rowBase: u32, col: u32, v: vec4<f32>) {
  if (col + 3u < p.N) {
    out[rowBase + col] = v.x;
    out[rowBase + col + 1u] = v.y;
    out[rowBase + col + 2u] = v.z;
    out[rowBase + col + 3u] = v.w;
  } else {
    if (col < p.N) { out[rowBase + col] = v.x; }
    if (col + 1u < p.N) { out[rowBase + col + 1u] = v.y; }
    if (col + 2u < p.N) { out[rowBase + col + 2u] = v.z; }
  }
}
