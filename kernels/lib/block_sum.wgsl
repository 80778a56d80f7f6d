// Workgroup-wide sums over WG = 256 threads through a shared-memory tree (log2(WG) halving steps,
// each behind a barrier); every thread gets the total. Call from uniform control flow.
//   block_sum(v, lid)   f32, through red
//   block_sum2(v, lid)  vec2<f32> (two sums for the price of one tree), through red2
// Only the array that an entry point's calls use is allocated (1 or 2 KiB of workgroup memory).
// No bindings; the includer uses @workgroup_size(256) (WG). Included by layernorm_forward (via
// lib/row_sums.wgsl), rmsnorm_forward (via lib/row_sums.wgsl), layernorm_backward, rmsnorm_backward.

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<vec2<f32>, WG>;

fn block_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next call
  return total;
}

fn block_sum2(v: vec2<f32>, lid: u32) -> vec2<f32> {
  red2[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red2[lid] += red2[lid + s];
    }
    workgroupBarrier();
  }
  let total = red2[0];
  workgroupBarrier(); // red2 is reused by the next call
  return total;
}
