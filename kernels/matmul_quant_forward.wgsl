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

struct Params { M: u32, N: u32, K: u32, hasBias: u32, format: u32, scaleOff: u32, groupOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
const ROW4: u32 = 33u; // vec4s per shared row: 128 floats + 4 of padding

// bitsandbytes' NF4 code book as exact f32 bits (src/ref/quant.ts NF4_CODE)
const NF4 = array<u32, 16>(
  0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
  0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u);

var<workgroup> As: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + k][m / 4]
var<workgroup> Bs: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + k][n / 4]
var<workgroup> lut: array<f32, 16>;

// absmax of NF4 block b
fn blockScale(b: u32) -> f32 {
  if (p.format == 1u) {
    let q = (weight[p.scaleOff + (b >> 2u)] >> ((b & 3u) * 8u)) & 0xffu;
    let g = p.groupOff + 2u * (b >> 8u);
    return fma(f32(q), bitcast<f32>(weight[g + 1u]), bitcast<f32>(weight[g]));
  }
  return bitcast<f32>(weight[p.scaleOff + b]);
}

// the value of element e
fn dequant1(e: u32) -> f32 {
  if (p.format == 2u) {
    let q = bitcast<i32>(weight[e >> 2u] << (24u - (e & 3u) * 8u)) >> 24u;
    return f32(q) * bitcast<f32>(weight[p.scaleOff + (e >> 5u)]);
  }
  let shift = (e & 6u) * 4u + (1u - (e & 1u)) * 4u;
  return lut[(weight[e >> 3u] >> shift) & 15u] * blockScale(e >> 6u);
}

// the values of elements e .. e+3, e % 4 == 0 (one word, one block)
fn dequant4(e: u32) -> vec4<f32> {
  if (p.format == 2u) {
    let w = weight[e >> 2u];
    let q = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u);
    return vec4<f32>(q) * bitcast<f32>(weight[p.scaleOff + (e >> 5u)]);
  }
  let bits = weight[e >> 3u] >> ((e & 4u) * 4u); // bytes (e/2)%4 and the next: elements e, e+1 | e+2, e+3
  let s = blockScale(e >> 6u);
  return vec4<f32>(lut[(bits >> 4u) & 15u], lut[bits & 15u], lut[(bits >> 12u) & 15u], lut[(bits >> 8u) & 15u]) * s;
}

// W[n, k .. k+3] with zeros outside the matrix
fn weight4(n: u32, k: u32) -> vec4<f32> {
  if (n >= p.N || k >= p.K) {
    return vec4<f32>(0.0);
  }
  let e = n * p.K + k;
  if ((p.K & 3u) == 0u) {
    return dequant4(e);
  }
  var v = vec4<f32>(dequant1(e), 0.0, 0.0, 0.0);
  if (k + 1u < p.K) { v.y = dequant1(e + 1u); }
  if (k + 2u < p.K) { v.z = dequant1(e + 2u); }
  if (k + 3u < p.K) { v.w = dequant1(e + 3u); }
  return v;
}

fn inpAt(rowOff: u32, ok: bool) -> f32 {
  if (ok) {
    return inp[rowOff];
  }
  return 0.0;
}

// writes v to out[rowBase + col .. col + 3], the columns < N
fn store4(rowBase: u32, col: u32, v: vec4<f32>) {
  if (col + 3u < p.N) {
    out[rowBase + col] = v.x;
    out[rowBase + col + 1u] = v.y;
    out[rowBase + col + 2u] = v.z;
    out[rowBase + col + 3u] = v.w;
  } else {
    if (col < p.N) { out[rowBase + col] = v.x; }
    if (col + 1u < p.N) { out[rowBase + col + 1u] = v.y; }
    if (col + 2u < p.N) { out[rowBase + col + 2u] = v.z; }
  }
}

fn biasAt(n: u32) -> f32 {
  if (p.hasBias != 0u && n < p.N) {
    return bias[n];
  }
  return 0.0;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let K = p.K;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  if (lid < 16u) {
    lut[lid] = bitcast<f32>(NF4[lid]);
  }

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
      for (var kk = 0u; kk < BK; kk++) {
        let r = cur + kk;
        let a0 = As[r][ty];
        let a1 = As[r][ty + 16u];
        let b0 = Bs[r][tx];
        let b1 = Bs[r][tx + 16u];
        acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
        acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
        acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
        acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
        acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
        acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
        acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
        acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
        acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
        acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
        acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
        acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
        acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
        acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
        acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
        acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
      }
    }
    if (more) {
      As[nxt + lk][sq][sc] = ra.x;
      As[nxt + lk][sq + 8u][sc] = ra.y;
      As[nxt + lk][sq + 16u][sc] = ra.z;
      As[nxt + lk][sq + 24u][sc] = ra.w;
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
  let bias0 = vec4<f32>(biasAt(c0), biasAt(c0 + 1u), biasAt(c0 + 2u), biasAt(c0 + 3u));
  let bias1 = vec4<f32>(biasAt(c1), biasAt(c1 + 1u), biasAt(c1 + 2u), biasAt(c1 + 3u));
  var r = m0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < M) {
      store4(r * p.N, c0, acc[0] + bias0);
      store4(r * p.N, c1, acc[1] + bias1);
    }
    // move the next row's accumulators into acc[0], acc[1]: constant indices only, so acc stays in
    // registers whether or not the compiler unrolls this loop
    acc[0] = acc[2]; acc[1] = acc[3]; acc[2] = acc[4]; acc[3] = acc[5]; acc[4] = acc[6]; acc[5] = acc[7];
    acc[6] = acc[8]; acc[7] = acc[9]; acc[8] = acc[10]; acc[9] = acc[11]; acc[10] = acc[12]; acc[11] = acc[13];
    acc[12] = acc[14]; acc[13] = acc[15];
    r += select(1u, 61u, i == 3u); // rows 4ty .. 4ty+3, then 64+4ty .. 64+4ty+3
  }
}
