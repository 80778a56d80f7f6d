// rmsnorm_forward: Llama / Qwen2 RMSNorm over rows of C channels (HF LlamaRMSNorm, all in f32).
//   rstd[r]   = 1 / sqrt(sum_c inp[r, c]^2 / C + eps)
//   out[r, c] = weight[c] * (inp[r, c] * rstd[r])
// Shapes: inp, out (N, C) with N = B*T rows; weight (C); rstd (N). All f32.
// Bindings: 0 Params {N, C, eps, save}, 1 inp (read), 2 weight (read), 3 out (write), 4 rstd (write).
// save = 1 writes rstd, which is what rmsnorm_backward needs; save = 0 never touches it, so any
// other writable buffer (a placeholder: src/ops/norms.ts) may be bound there.
// Workgroup: 256 threads per row; grid (x, y) of rows, row = wg.x + wg.y * num_workgroups.x.
// Threads stride the row by 256 (coalesced); a shared-memory tree sums the squares; the second
// read of the row mostly hits L1/L2.
// Shared code: lib/row_sums.wgsl, lib/block_sum.wgsl.

struct Params { N: u32, C: u32, eps: f32, save: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

//!include lib/row_sums.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) {
    return;
  }
  let C = p.C;
  let base = row * C;

  // mean of squares (4 independent loads in flight per thread)
  let r = inverseSqrt(row_mean(base, C, lid, true) + p.eps);

  for (var k = lid; k < C; k += WG) {
    out[base + k] = weight[k] * (inp[base + k] * r);
  }
  if (lid == 0u && p.save != 0u) {
    rstd[row] = r;
  }
}
