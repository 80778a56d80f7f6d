// Shared pieces of the quantizers: reading the source weight, the block absmax over 8 threads and
// the exact rounding of a value to a grid of thresholds.
// The includer declares `src: array<u32>` (read) and Params `p` with u32 fields n and dtype, uses
// @workgroup_size(256) and lets 8 consecutive threads share one block.
// Included by quantize_nf4 and quantize_int8.

//!include lib/dtype.wgsl

var<workgroup> part: array<f32, 256>;

// source element e (dtype 0 f32, 1 bf16, 2 f16: packing in lib/dtype.wgsl), 0 past n
fn srcAt(e: u32) -> f32 {
  if (e >= p.n) {
    return 0.0;
  }
  if (p.dtype == 0u) {
    return bitcast<f32>(src[e]);
  }
  return unpackHalf(src[e >> 1u], e, p.dtype);
}

// The max of m over the 8 threads lid & ~7 .. (lid & ~7) + 7 (one block), through part; max is exact
// in any order. Contains a barrier: call from uniform control flow, before any early return.
fn blockAbsmax(m: f32, lid: u32) -> f32 {
  part[lid] = m;
  workgroupBarrier();
  let first = lid & ~7u;
  var A = 0.0;
  for (var j = 0u; j < 8u; j++) {
    A = max(A, part[first + j]);
  }
  return A;
}

// q in 0..qmax with q = #{j < qmax : a > (j + 1/2) · d} (f32 products as thresholds, ties down),
// a >= 0, d >= 0: a first guess round(guess) (guess ≈ a / d), then corrected by those comparisons,
// so WGSL's inexact division never decides a code.
fn roundToGrid(a: f32, d: f32, guess: f32, qmax: u32) -> u32 {
  var q = u32(clamp(round(guess), 0.0, f32(qmax)));
  loop {
    if (q < qmax && a > (f32(q) + 0.5) * d) { q++; } else { break; }
  }
  loop {
    if (q > 0u && a <= (f32(q) - 0.5) * d) { q--; } else { break; }
  }
  return q;
}
