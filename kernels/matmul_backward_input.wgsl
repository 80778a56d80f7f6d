// matmul_backward_input: the input gradient of matmul_forward (out = inp · weightᵀ).
//   dinp[b, m, k] (= or +=) sum_n dout[b, m, n] * weight[b', n, k]         m < M, k < K, n < N
// WRITTEN when accumulate = 0, ADDED (+=) when accumulate = 1: the autodiff sums the gradients of an
// activation with several consumers by accumulating.
// Shapes: dout f32 [batch, M, N]; weight [N, K] in f32, bf16 or f16 (Params.dtype 0/1/2, packing as in
//   matmul_forward.wgsl); dinp f32 [batch, M, K]. b' = b, or 0 when sharedW = 1.
// Bindings: 0 Params {M, N, K, sharedW, accumulate, dtype}, 1 dout (read), 2 weight (read, u32),
//   3 dinp (read_write).
// Workgroup: 256 threads own a 128x128 tile of dinp (rows m x cols k), 8x8 per thread exactly as in
//   matmul_forward (thread (tx, ty): rows {4ty.., 64+4ty..} x cols {4tx.., 64+4tx..}). N is walked
//   in steps of BK = 8 through double-buffered shared tiles As [n][m] (dout, loaded n-fastest and
//   transposed) and Bs [n][k] (weight rows, loaded k-fastest: 128 threads read one contiguous row
//   segment); rows padded to 132 floats. Guarded everywhere. 16.5 KiB of workgroup memory.
// Grid: (ceil(K/128), ceil(M/128), batch).
// Shared code: lib/matmul_tile.wgsl (tiles, micro-kernel), lib/weights.wgsl, lib/matmul_dinp.wgsl.

struct Params { M: u32, N: u32, K: u32, sharedW: u32, accumulate: u32, dtype: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

//!include lib/matmul_tile.wgsl
//!include lib/weights.wgsl
//!include lib/matmul_dinp.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let b = wg.z;
  let wb = select(b, 0u, p.sharedW != 0u);
  let m0 = wg.y * BM;
  let k0 = wg.x * BN;

  // A (dout) load roles: n = n0 + ln of rows m0 + lr + 32j
  let ln = lid & 7u;
  let lr = lid >> 3u;
  let am = vec4<u32>(m0 + lr, m0 + lr + 32u, m0 + lr + 64u, m0 + lr + 96u);
  let aOk = am < vec4<u32>(M);
  let aOff = vec4<u32>(b * M * N) + am * N;
  let sq = lr >> 2u;
  let sc = lr & 3u;
  // B (weight) load roles: column k0 + bc of weight rows n0 + br + 2j
  let bc = lid & 127u;
  let br = lid >> 7u;
  let bOk = k0 + bc < K;
  let bOff = wb * N * K + k0 + bc;
  let bq = bc >> 2u;
  let bcc = bc & 3u;

  let tx = lid & 15u;
  let ty = lid >> 4u;

  var acc: array<vec4<f32>, 16>;

  let steps = (N + BK - 1u) / BK;
  var ra: vec4<f32>;
  var rb: vec4<f32>;

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
      let rn = s * BK + br;
      rb = vec4<f32>(weightIf(bOff + rn * K, bOk && rn < N), weightIf(bOff + (rn + 2u) * K, bOk && rn + 2u < N),
                     weightIf(bOff + (rn + 4u) * K, bOk && rn + 4u < N), weightIf(bOff + (rn + 6u) * K, bOk && rn + 6u < N));
    }
    if (s > 0u) {
      tileFma(&acc, cur, tx, ty);
    }
    if (more) {
      storeAWide(nxt + ln, sq, sc, ra);
      storeBTall(nxt + br, bq, bcc, rb);
    }
    workgroupBarrier();
  }

  let outBase = b * M * K;
  let c0 = k0 + 4u * tx;
  let c1 = c0 + 64u;
  var r = m0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < M) {
      store4(outBase + r * K, c0, acc[0]);
      store4(outBase + r * K, c1, acc[1]);
    }
    r += nextRow(&acc, i);
  }
}
