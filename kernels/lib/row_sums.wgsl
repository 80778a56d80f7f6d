// The row reduction of the norm forwards: the mean or the mean of squares of inp[base .. base + C),
// computed by a workgroup of WG = 256 threads (one workgroup per row). Each thread strides the row by
// WG (coalesced) with 4 independent loads in flight, then lib/block_sum.wgsl combines the partial
// sums; every thread gets the result. Call from uniform control flow.
// The includer declares `inp: array<f32>` and uses @workgroup_size(256).
// Included by layernorm_forward and rmsnorm_forward.

//!include lib/block_sum.wgsl

// sum_c inp[base + c] / C, or sum_c inp[base + c]^2 / C when squares (pass a constant: after inlining
// the choice costs nothing)
fn row_mean(base: u32, C: u32, lid: u32, squares: bool) -> f32 {
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  var c = lid;
  for (; c + 3u * WG < C; c += 4u * WG) {
    let x0 = inp[base + c];
    let x1 = inp[base + c + WG];
    let x2 = inp[base + c + 2u * WG];
    let x3 = inp[base + c + 3u * WG];
    s0 += select(x0, x0 * x0, squares);
    s1 += select(x1, x1 * x1, squares);
    s2 += select(x2, x2 * x2, squares);
    s3 += select(x3, x3 * x3, squares);
  }
  for (; c < C; c += WG) {
    let x = inp[base + c];
    s0 += select(x, x * x, squares);
  }
  return block_sum((s0 + s1) + (s2 + s3), lid) / f32(C);
}
