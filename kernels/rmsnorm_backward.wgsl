// rmsnorm_backward: gradients of kernels/rmsnorm_forward.wgsl.
//   norm[r, c]  = inp[r, c] * rstd[r]
//   dnorm[r, c] = weight[c] * dout[r, c]
//   dinp[r, c]  = rstd[r] * (dnorm - norm * mean_c(dnorm * norm))
//   dweight[c] += sum_r dout[r, c] * norm[r, c]
// (from d rstd / d inp[c] = -rstd^3 * inp[c] / C.)
// Shapes: dinp, dout, inp (N, C); weight, dweight (C); rstd (N) saved by the forward;
// scratch (nChunks, C) for the weight gradient.
// Bindings: 0 Params {N, C, accumulate, rowsPerChunk, nChunks}, 1 dout (read), 2 inp (read),
//           3 weight (read), 4 rstd (read), 5 dinp (read_write), 6 dweight (read_write),
//           7 scratch (read_write).
// Gradient convention: dinp is written (=) when accumulate = 0 and added to (+=) when
// accumulate = 1 (residual stream); dweight is always accumulated (+=). dinp must not be the same
// buffer as dout or inp.
// Entry points (all share the bindings; one that does not touch a binding accepts any writable buffer
// there that aliases no other writable binding (Dawn checks), e.g. a small placeholder, so the
// weight gradient is optional):
//   main            dinp only. 256 threads per row, grid of rows (row = wg.x + wg.y * nwg.x).
//   dparams_partial per (256-column block, chunk of rowsPerChunk rows): column sums of dout*norm
//                   into scratch[chunk, c]. Grid (ceil(C/256), nChunks).
//   dparams_reduce  dweight[c] += sum_chunk scratch[chunk, c]. Grid ceil(C/256).
// Shared code: lib/block_sum.wgsl.

struct Params { N: u32, C: u32, accumulate: u32, rowsPerChunk: u32, nChunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> scratch: array<f32>;

//!include lib/block_sum.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) {
    return;
  }
  let C = p.C;
  let base = row * C;
  let r = rstd[row];

  // pass 1: sum(dnorm * norm), two columns in flight per thread
  var a = 0.0;
  var b = 0.0;
  var c = lid;
  for (; c + WG < C; c += 2u * WG) {
    a += weight[c] * dout[base + c] * inp[base + c];
    b += weight[c + WG] * dout[base + c + WG] * inp[base + c + WG];
  }
  if (c < C) {
    a += weight[c] * dout[base + c] * inp[base + c];
  }
  // sum(dnorm * norm) = rstd * sum(weight * dout * inp)
  let dnorm_norm_mean = block_sum(a + b, lid) * r / f32(C);

  // pass 2: dinp
  for (var k = lid; k < C; k += WG) {
    let dn = weight[k] * dout[base + k];
    let n = inp[base + k] * r;
    let g = (dn - n * dnorm_norm_mean) * r;
    if (p.accumulate != 0u) {
      dinp[base + k] += g;
    } else {
      dinp[base + k] = g;
    }
  }
}

@compute @workgroup_size(256)
fn dparams_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let C = p.C;
  let c = wid.x * WG + lid;
  if (c >= C) {
    return;
  }
  let chunk = wid.y;
  let r0 = chunk * p.rowsPerChunk;
  let r1 = min(p.N, r0 + p.rowsPerChunk);
  var dw = 0.0;
  for (var row = r0; row < r1; row++) {
    let i = row * C + c;
    dw += dout[i] * (inp[i] * rstd[row]);
  }
  scratch[chunk * C + c] = dw;
}

@compute @workgroup_size(256)
fn dparams_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let C = p.C;
  let c = wid.x * WG + lid;
  if (c >= C) {
    return;
  }
  var dw = 0.0;
  for (var k = 0u; k < p.nChunks; k++) {
    dw += scratch[k * C + c];
  }
  dweight[c] += dw;
}
