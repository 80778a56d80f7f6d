// matmul_quant_backward_input: the input gradient of matmul_quant_forward (out = inp · dequant(W)ᵀ),
// dequantizing the frozen weight in registers while its tile is loaded.
//   dinp[m, k] (= or +=) sum_n dout[m, n] * W[n, k]                           m < M, k < K, n < N
// WRITTEN when accumulate = 0, ADDED (+=) when accumulate = 1 (an activation with several consumers).
// Shapes: dout f32 [M, N]; weight [N, K] quantized (Params.format 0 nf4, 1 nf4dq, 2 int8: layout and
//   decoding as in matmul_quant_forward.wgsl and src/ops/quant.ts); dinp f32 [M, K].
// Bindings: 0 Params {M, N, K, accumulate, format, scaleOff, groupOff}, 1 dout (read), 2 weight (read,
//   u32), 3 dinp (read_write).
// Workgroup: as kernels/matmul_backward_input.wgsl: 256 threads own a 128x128 tile of dinp (rows m x
//   cols k), 8x8 per thread; N in steps of BK = 8 through double-buffered shared tiles As [n][m] (dout,
//   transposed) and Bs [n][k]. Weight loads: thread t decodes 4 consecutive values k0 + 4(t & 31) .. +3
//   of weight row n = 8s + t/32 (a warp reads one contiguous 64-byte nf4 / 128-byte int8 segment of a
//   row) and stores them as one vec4 into Bs. NF4 code book in workgroup memory. 16.6 KiB of
//   workgroup memory. No weight gradient exists for quantized weights.
// Grid: (ceil(K/128), ceil(M/128)).
// Shared code: lib/matmul_tile.wgsl (tiles, micro-kernel), lib/quant.wgsl (dequantization), lib/matmul_dinp.wgsl.

struct Params { M: u32, N: u32, K: u32, accumulate: u32, format: u32, scaleOff: u32, groupOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

//!include lib/matmul_tile.wgsl
//!include lib/quant.wgsl
//!include lib/matmul_dinp.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let m0 = wg.y * BM;
  let k0 = wg.x * BN;
  loadNf4Lut(lid);

  // A (dout) load roles: n = n0 + ln of rows m0 + lr + 32j
  let ln = lid & 7u;
  let lr = lid >> 3u;
  let am = vec4<u32>(m0 + lr, m0 + lr + 32u, m0 + lr + 64u, m0 + lr + 96u);
  let aOk = am < vec4<u32>(M);
  let aOff = am * N;
  let sq = lr >> 2u;
  let sc = lr & 3u;
  // B (weight) load roles: columns k0 + 4bq .. +3 of weight row n0 + br
  let bq = lid & 31u;
  let br = lid >> 5u;

  let tx = lid & 15u;
  let ty = lid >> 4u;

  var acc: array<vec4<f32>, 16>;

  let steps = (N + BK - 1u) / BK;
  var ra: vec4<f32>;
  var rb: vec4<f32>;
  workgroupBarrier(); // lut is filled

  // iteration s issues the global loads of step s, computes step s - 1 from shared memory while
  // they are in flight, then stores step s into the other buffer: one barrier per step
  for (var s = 0u; s <= steps; s++) {
    let cur = ((s + 1u) & 1u) * BK; // buffer of step s - 1
    let nxt = BK - cur; // buffer of step s
    let more = s < steps;
    if (more) {
      let n = s * BK + ln;
      let nOk = n < N;
      ra = vec4<f32>(doutIf(aOff.x + n, aOk.x && nOk), doutIf(aOff.y + n, aOk.y && nOk),
                     doutIf(aOff.z + n, aOk.z && nOk), doutIf(aOff.w + n, aOk.w && nOk));
      rb = weight4(s * BK + br, k0 + 4u * bq);
    }
    if (s > 0u) {
      tileFma(&acc, cur, tx, ty);
    }
    if (more) {
      storeAWide(nxt + ln, sq, sc, ra);
      Bs[nxt + br][bq] = rb;
    }
    workgroupBarrier();
  }

  let c0 = k0 + 4u * tx;
  let c1 = c0 + 64u;
  var r = m0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < M) {
      store4(r * K, c0, acc[0]);
      store4(r * K, c1, acc[1]);
    }
    r += nextRow(&acc, i);
  }
}
