// layernorm_forward: GPT-2 LayerNorm over rows of C channels (HF GPT2 ln_1 / ln_2 / ln_f).
//   mean[r] = sum_c inp[r, c] / C
//   rstd[r] = 1 / sqrt(sum_c (inp[r, c] - mean[r])^2 / C + eps)        (biased variance, two passes)
//   out[r, c] = (inp[r, c] - mean[r]) * rstd[r] * weight[c] + bias[c]
// Shapes: inp, out (N, C) with N = B*T rows; weight, bias (C); mean, rstd (N). All f32.
// Bindings: 0 Params {N, C, eps, save}, 1 inp (read), 2 weight (read), 3 bias (read),
//           4 out (write), 5 mean (write), 6 rstd (write).
// save = 1 writes mean and rstd, which is what layernorm_backward needs; save = 0 never touches
// them, so any other writable buffer (a placeholder: src/ops/norms.ts) may be bound there.
// Workgroup: 256 threads per row; grid (x, y) of rows, row = wg.x + wg.y * num_workgroups.x, so N
// may exceed 65535. Each thread strides the row by 256 (coalesced), partial sums are combined by a
// shared-memory tree. The row is read three times: the first pass from memory, the others mostly
// from L1/L2 (a row is at most a few tens of KiB).
// Shared code: lib/row_sums.wgsl (pass 1), lib/block_sum.wgsl.

struct Params { N: u32, C: u32, eps: f32, save: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;

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

  // pass 1: mean (4 independent loads in flight per thread)
  let m = row_mean(base, C, lid, false);

  // pass 2: biased variance around the mean
  var v = 0.0;
  for (var k = lid; k < C; k += WG) {
    let d = inp[base + k] - m;
    v += d * d;
  }
  let r = inverseSqrt(block_sum(v, lid) / f32(C) + p.eps);

  // pass 3: normalize, scale, shift
  for (var k = lid; k < C; k += WG) {
    out[base + k] = (inp[base + k] - m) * r * weight[k] + bias[k];
  }
  if (lid == 0u && p.save != 0u) {
    mean[row] = m;
    rstd[row] = r;
  }
}
