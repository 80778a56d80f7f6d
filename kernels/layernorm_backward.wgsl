// layernorm_backward: gradients of kernels/layernorm_forward.wgsl (llm.c layernorm_backward).
//   norm[r, c]  = (inp[r, c] - mean[r]) * rstd[r]
//   dnorm[r, c] = weight[c] * dout[r, c]
//   dinp[r, c]  = rstd[r] * (dnorm - mean_c(dnorm) - norm * mean_c(dnorm * norm))
//   dweight[c] += sum_r dout[r, c] * norm[r, c];   dbias[c] += sum_r dout[r, c]
// Shapes: dinp, dout, inp (N, C); weight, dweight, dbias (C); mean, rstd (N) saved by the forward;
// scratch (nChunks, 2, C) for the parameter gradients.
// Bindings: 0 Params {N, C, accumulate, rowsPerChunk, nChunks}, 1 dout (read), 2 inp (read),
//           3 weight (read), 4 mean (read), 5 rstd (read), 6 dinp (read_write),
//           7 dweight (read_write), 8 dbias (read_write), 9 scratch (read_write).
// Gradient convention: dinp is written (=) when accumulate = 0 and added to (+=) when
// accumulate = 1 (the residual stream sums into an existing gradient); dweight and dbias are
// always accumulated (+=). dinp must not be the same buffer as dout or inp.
// Entry points (all share the bindings; one that does not touch a binding accepts any writable buffer
// there that aliases no other writable binding (Dawn checks), e.g. a small placeholder, so the
// parameter gradients are optional: the norms are frozen in ABFT):
//   main            dinp only. 256 threads per row, grid of rows (row = wg.x + wg.y * nwg.x).
//                   Touches dout, inp, weight, mean, rstd, dinp.
//   dparams_partial per (256-column block, chunk of rowsPerChunk rows): column sums of dout*norm
//                   and dout into scratch[chunk, 0, c] and scratch[chunk, 1, c]. Grid
//                   (ceil(C/256), nChunks). Touches dout, inp, mean, rstd, scratch.
//   dparams_reduce  dweight[c] += sum_chunk scratch[chunk, 0, c], dbias likewise. 256 columns per
//                   workgroup, grid ceil(C/256). Touches scratch, dweight, dbias.
// Shared code: lib/block_sum.wgsl.

struct Params { N: u32, C: u32, accumulate: u32, rowsPerChunk: u32, nChunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(7) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(8) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(9) var<storage, read_write> scratch: array<f32>;

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
  let m = mean[row];
  let r = rstd[row];

  // pass 1: sum(dnorm) and sum(dnorm * norm), two columns in flight per thread
  var a = vec2<f32>(0.0);
  var b = vec2<f32>(0.0);
  var c = lid;
  for (; c + WG < C; c += 2u * WG) {
    let dn0 = weight[c] * dout[base + c];
    let dn1 = weight[c + WG] * dout[base + c + WG];
    let n0 = (inp[base + c] - m) * r;
    let n1 = (inp[base + c + WG] - m) * r;
    a += vec2<f32>(dn0, dn0 * n0);
    b += vec2<f32>(dn1, dn1 * n1);
  }
  if (c < C) {
    let dn = weight[c] * dout[base + c];
    a += vec2<f32>(dn, dn * (inp[base + c] - m) * r);
  }
  let sums = block_sum2(a + b, lid) / f32(C);
  let dnorm_mean = sums.x;
  let dnorm_norm_mean = sums.y;

  // pass 2: dinp
  for (var k = lid; k < C; k += WG) {
    let dn = weight[k] * dout[base + k];
    let n = (inp[base + k] - m) * r;
    let g = (dn - dnorm_mean - n * dnorm_norm_mean) * r;
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
  var db = 0.0;
  for (var row = r0; row < r1; row++) {
    let i = row * C + c;
    let d = dout[i];
    dw += d * (inp[i] - mean[row]) * rstd[row];
    db += d;
  }
  scratch[chunk * 2u * C + c] = dw;
  scratch[chunk * 2u * C + C + c] = db;
}

@compute @workgroup_size(256)
fn dparams_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let C = p.C;
  let c = wid.x * WG + lid;
  if (c >= C) {
    return;
  }
  var dw = 0.0;
  var db = 0.0;
  for (var k = 0u; k < p.nChunks; k++) {
    dw += scratch[k * 2u * C + c];
    db += scratch[k * 2u * C + C + c];
  }
  dweight[c] += dw;
  dbias[c] += db;
}
