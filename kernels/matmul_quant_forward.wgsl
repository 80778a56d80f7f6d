// matmul_quant_forward: out = inp · dequant(weight)ᵀ (+ bias), the nn.Linear product with a frozen
// quantized weight, dequantized in registers while the weight tile is loaded.
//   out[m, n] = sum_k inp[m, k] * W[n, k] (+ bias[n])                          m < M, n < N, k < K
// Shapes: inp f32 [M, K]; weight [N, K] quantized as one u32 buffer (layout in src/ops/quant.ts);
//   bias f32 [N]; out f32 [M, N].
// Weight formats (Params.format):
//   0 nf4:   codes at word e/8, nibble (byte (e/2)%4, even element high); absmax f32 at scaleOff + e/64;
//            W = NF4[q] · absmax
//   1 nf4dq: as nf4, absmax = fma(q8, step, lo) with q8 byte (b%4) of word scaleOff + b/4 (b = e/64)
//            and (lo, step) f32 at groupOff + 2·(b/256)
//   2 int8:  code byte e%4 of word e/4 (two's complement); scale f32 at scaleOff + e/32; W = q · scale
//   Element index e = n·K + k over the flat weight, so any K works; when K % 4 == 0 a thread's 4 values
//   share one word (and one block) and are decoded together (a uniform branch selects that path).
// The NF4 code book is copied into workgroup memory (16 floats, 16 banks: lookups never conflict).
// Computation and accumulation are f32.
// Bindings: 0 Params {M, N, K, hasBias, format, scaleOff, groupOff}, 1 inp (read), 2 weight (read,
//   u32), 3 bias (read; not read when hasBias = 0: bind any buffer), 4 out (write).
// Workgroup: as kernels/matmul_forward.wgsl: 256 threads own a 128x128 tile of out, 8x8 outputs per
//   thread (rows {4ty.., 64+4ty..} x cols {4tx.., 64+4tx..}), K in steps of BK = 8 through
//   double-buffered transposed shared tiles (rows padded to 132 floats), one barrier per step.
//   Weight loads: thread t decodes 4 consecutive values k = 8s + 4(t & 1) .. +3 of row n0 + t/2 (half
//   a word of nf4, one word of int8) and stores them as f32 into Bs. 16.6 KiB of workgroup memory.
// Grid: (ceil(N/128), ceil(M/128)).
// Backward (matmul_quant_backward_input) needs the weight only; the weight never gets a gradient.
// Shared code: lib/matmul_tile.wgsl (tiles, micro-kernel), lib/quant.wgsl (dequantization), lib/matmul_out.wgsl.

struct Params { M: u32, N: u32, K: u32, hasBias: u32, format: u32, scaleOff: u32, groupOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//!include lib/matmul_tile.wgsl
//!include lib/quant.wgsl
//!include lib/matmul_out.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let K = p.K;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  loadNf4Lut(lid);

  // inp load roles: k = k0 + lk of rows lr, lr+32, lr+64, lr+96
  let lk = lid & 7u;
  let lr = lid >> 3u;
  let am = vec4<u32>(m0 + lr, m0 + lr + 32u, m0 + lr + 64u, m0 + lr + 96u);
  let aOk = am < vec4<u32>(M);
  let aOff = am * K;
  let sq = lr >> 2u; // shared vec4 column of row lr (rows lr + 32j are at sq + 8j)
  let sc = lr & 3u;
  // weight load roles: values k0 + wk .. +3 of row n0 + wr
  let wr = lid >> 1u;
  let wk = (lid & 1u) * 4u;
  let wq = wr >> 2u;
  let wc = wr & 3u;

  // compute roles
  let tx = lid & 15u;
  let ty = lid >> 4u;

  var acc: array<vec4<f32>, 16>; // acc[2i + h]: row i (0..3: 4ty+i, 4..7: 64+4ty+i-4), cols chunk h

  let steps = (K + BK - 1u) / BK;
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
      let k = s * BK + lk;
      let kOk = k < K;
      ra = vec4<f32>(inpAt(aOff.x + k, aOk.x && kOk), inpAt(aOff.y + k, aOk.y && kOk),
                     inpAt(aOff.z + k, aOk.z && kOk), inpAt(aOff.w + k, aOk.w && kOk));
      rb = weight4(n0 + wr, s * BK + wk);
    }
    if (s > 0u) {
      tileFma(&acc, cur, tx, ty);
    }
    if (more) {
      storeAWide(nxt + lk, sq, sc, ra);
      Bs[nxt + wk][wq][wc] = rb.x;
      Bs[nxt + wk + 1u][wq][wc] = rb.y;
      Bs[nxt + wk + 2u][wq][wc] = rb.z;
      Bs[nxt + wk + 3u][wq][wc] = rb.w;
    }
    workgroupBarrier();
  }

  // epilogue: + bias, guarded stores
  let c0 = n0 + 4u * tx;
  let c1 = c0 + 64u;
  let bias0 = vec4<f32>(biasAt(c0, 0u), biasAt(c0 + 1u, 0u), biasAt(c0 + 2u, 0u), biasAt(c0 + 3u, 0u));
  let bias1 = vec4<f32>(biasAt(c1, 0u), biasAt(c1 + 1u, 0u), biasAt(c1 + 2u, 0u), biasAt(c1 + 3u, 0u));
  var r = m0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < M) {
      store4(r * p.N, c0, acc[0] + bias0);
      store4(r * p.N, c1, acc[1] + bias1);
    }
    r += nextRow(&acc, i);
  }
}
