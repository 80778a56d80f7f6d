// matmul_forward: out = inp · weightᵀ (+ bias), the nn.Linear product, optionally batched.
//   out[b, m, n] = sum_k inp[b, m, k] * weight[b', n, k] (+ bias[b', n])      m < M, n < N, k < K
// Shapes: inp f32 [batch, M, K]; weight [N, K] (nn.Linear: [out_features, in_features]) in f32, bf16
//   or f16; bias f32 [N]; out f32 [batch, M, N]. b' = b, or 0 when sharedW = 1 (one weight and bias
//   for every batch, e.g. a linear layer applied to B*T rows); per-batch weights [batch, N, K] (and
//   bias [batch, N]) serve batched products such as q·kᵀ.
// Weight storage (Params.dtype): the weight is bound as array<u32>.
//   dtype 0: f32, one value per word (bitcast)
//   dtype 1: bf16, two per word, element 2j in the low 16 bits (little-endian, as safetensors);
//            value = bitcast<f32>(bits << 16)
//   dtype 2: f16, same packing, unpack2x16float (core WGSL: needs no shader-f16)
//   A uniform branch rather than an override constant: one pipeline serves all three (each
//   pipeline of this size costs lavapipe seconds of LLVM time on first use).
//   Packed element indices run over the whole buffer (b'·N·K + n·K + k), so odd K is fine.
// Computation and accumulation are f32.
// Bindings: 0 Params {M, N, K, sharedW, hasBias, dtype}, 1 inp (read), 2 weight (read, u32), 3 bias (read;
//   when hasBias = 0 it is not read: bind any buffer, e.g. the weight again), 4 out (write).
// Workgroup: 256 threads own a 128x128 tile of out; thread (tx, ty) = (lid % 16, lid / 16) owns 8x8
//   outputs: rows {4ty..4ty+3, 64+4ty..64+4ty+3} x cols {4tx..4tx+3, 64+4tx..64+4tx+3}, so that
//   its shared-memory reads are vec4s and a warp's B reads cover 256 contiguous bytes.
//   K is walked in steps of BK = 8 through double-buffered shared tiles As, Bs [k][m] (transposed,
//   rows padded to 132 floats: the transposing stores hit 32 distinct banks); the next step's
//   global loads are issued before the current step's 512 FMAs, with one barrier per step.
//   Global loads go k-fastest (8 threads read 32 contiguous bytes of one row) and are guarded, so
//   M, N, K need not be multiples of anything. 16.5 KiB of workgroup memory.
// Grid: (ceil(N/128), ceil(M/128), batch).
// Backward (matmul_backward_input / matmul_backward_weight) needs inp and the weight; nothing
// else is saved.
// Shared code: lib/matmul_tile.wgsl (tiles, micro-kernel), lib/weights.wgsl, lib/matmul_out.wgsl.

struct Params { M: u32, N: u32, K: u32, sharedW: u32, hasBias: u32, dtype: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//!include lib/matmul_tile.wgsl
//!include lib/weights.wgsl
//!include lib/matmul_out.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let b = wg.z;
  let wb = select(b, 0u, p.sharedW != 0u);
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;

  // load roles: thread reads k = k0 + lk of rows lr, lr+32, lr+64, lr+96 of both tiles
  let lk = lid & 7u;
  let lr = lid >> 3u;
  let inpBase = b * M * K;
  let wBase = wb * N * K;
  let am = vec4<u32>(m0 + lr, m0 + lr + 32u, m0 + lr + 64u, m0 + lr + 96u);
  let bn = vec4<u32>(n0 + lr, n0 + lr + 32u, n0 + lr + 64u, n0 + lr + 96u);
  let aOk = am < vec4<u32>(M);
  let bOk = bn < vec4<u32>(N);
  let aOff = vec4<u32>(inpBase) + am * K;
  let bOff = vec4<u32>(wBase) + bn * K;
  let sq = lr >> 2u; // shared vec4 column of row lr (rows lr + 32j are at sq + 8j)
  let sc = lr & 3u;

  // compute roles
  let tx = lid & 15u;
  let ty = lid >> 4u;

  var acc: array<vec4<f32>, 16>; // acc[2i + h]: row i (0..3: 4ty+i, 4..7: 64+4ty+i-4), cols chunk h

  let steps = (K + BK - 1u) / BK;
  var ra: vec4<f32>;
  var rb: vec4<f32>;

  // iteration s issues the global loads of step s, computes step s - 1 from shared memory while
  // they are in flight, then stores step s into the other buffer: one barrier per step
  for (var s = 0u; s <= steps; s++) {
    let cur = ((s + 1u) & 1u) * BK; // buffer of step s - 1
    let nxt = BK - cur; // buffer of step s
    let more = s < steps;
    if (more) {
      let k = s * BK + lk;
      let kOk = k < K;
      ra = vec4<f32>(inpAt(aOff.x + k, aOk.x && kOk), inpAt(aOff.y + k, aOk.y && kOk),
                     inpAt(aOff.z + k, aOk.z && kOk), inpAt(aOff.w + k, aOk.w && kOk));
      rb = vec4<f32>(weightIf(bOff.x + k, bOk.x && kOk), weightIf(bOff.y + k, bOk.y && kOk),
                     weightIf(bOff.z + k, bOk.z && kOk), weightIf(bOff.w + k, bOk.w && kOk));
    }
    if (s > 0u) {
      tileFma(&acc, cur, tx, ty);
    }
    if (more) {
      storeAWide(nxt + lk, sq, sc, ra);
      storeBWide(nxt + lk, sq, sc, rb);
    }
    workgroupBarrier();
  }

  // epilogue: + bias, guarded stores
  let c0 = n0 + 4u * tx;
  let c1 = c0 + 64u;
  let biasBase = wb * N;
  let bias0 = vec4<f32>(biasAt(c0, biasBase), biasAt(c0 + 1u, biasBase), biasAt(c0 + 2u, biasBase), biasAt(c0 + 3u, biasBase));
  let bias1 = vec4<f32>(biasAt(c1, biasBase), biasAt(c1 + 1u, biasBase), biasAt(c1 + 2u, biasBase), biasAt(c1 + 3u, biasBase));
  let outBase = b * M * N;
  var r = m0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < M) {
      store4(outBase + r * N, c0, acc[0] + bias0);
      store4(outBase + r * N, c1, acc[1] + bias1);
    }
    r += nextRow(&acc, i);
  }
}
