// Input and output of the input-gradient products dinp = dout · W (dout [rows, N], dinp [rows, K]):
// the guarded dout load and the bounded store of 4 gradients, WRITTEN when p.accumulate = 0 and
// ADDED (+=) when p.accumulate = 1 (an activation with several consumers).
// The includer declares `dout` (read) and `dinp` (read_write), both array<f32>, and Params `p` with
// u32 fields K and accumulate. Included by matmul_backward_input and matmul_quant_backward_input.

// dout[e], or 0 when !ok (a guarded tile load)
fn doutIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return dout[e];
  }
  return 0.0;
}

// dinp[rowBase + col .. col + 3] = v (or += v when accumulating), the columns < K
fn store4(rowBase: u32, col: u32, v: vec4<f32>) {
  let i = rowBase + col;
  if (col + 3u < p.K) {
    var o = v;
    if (p.accumulate != 0u) {
      o += vec4<f32>(dinp[i], dinp[i + 1u], dinp[i + 2u], dinp[i + 3u]);
    }
    dinp[i] = o.x;
    dinp[i + 1u] = o.y;
    dinp[i + 2u] = o.z;
    dinp[i + 3u] = o.w;
  } else {
    let keep = f32(p.accumulate != 0u);
    if (col < p.K) { dinp[i] = v.x + keep * dinp[i]; }
    if (col + 1u < p.K) { dinp[i + 1u] = v.y + keep * dinp[i + 1u]; }
    if (col + 2u < p.K) { dinp[i + 2u] = v.z + keep * dinp[i + 2u]; }
  }
}
