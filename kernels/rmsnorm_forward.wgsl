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

struct Params { N: u32, C: u32, eps: f32, save: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

// Sum of v over the workgroup; every thread gets the total. Call from uniform control flow.
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
  workgroupBarrier();
  return total;
}

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
    s0 += x0 * x0;
    s1 += x1 * x1;
    s2 += x2 * x2;
    s3 += x3 * x3;
  }
  for (; c < C; c += WG) {
    let x = inp[base + c];
    s0 += x * x;
  }
  let r = inverseSqrt(block_sum((s0 + s1) + (s2 + s3), lid) / f32(C) + p.eps);

  for (var k = lid; k < C; k += WG) {
    out[base + k] = weight[k] * (inp[base + k] * r);
  }
  if (lid == 0u && p.save != 0u) {
    rstd[row] = r;
  }
}
