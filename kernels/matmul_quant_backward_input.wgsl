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

struct Params { M: u32, N: u32, K: u32, accumulate: u32, format: u32, scaleOff: u32, groupOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
const ROW4: u32 = 33u; // vec4s per shared row: 128 floats + 4 of padding

// bitsandbytes' NF4 code book as exact f32 bits (src/ref/quant.ts NF4_CODE)
const NF4 = array<u32, 16>(
  0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
  0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u);

var<workgroup> As: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + n][m / 4]
var<workgroup> Bs: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + n][k / 4]
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

fn doutIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return dout[e];
  }
  return 0.0;
}

// dinp[rowBase + col .. col + 3] = v (or += v when accumulating), the columns < K
fn store4(rowBase: u32, col: u32, v: vec4<f32>) {
  let i = rowBase + col;
  if (col + 3u < p.K) {
    var o = v;
    if (p.accumulate != 0u) {
      o += vec4<f32>(dinp[i], dinp[i + 1u], dinp[i + 2u], dinp[i + 3u]);
    }
    dinp[i] = o.x;
    dinp[i + 1u] = o.y;
    dinp[i + 2u] = o.z;
    dinp[i + 3u] = o.w;
  } else {
    let keep = f32(p.accumulate != 0u);
    if (col < p.K) { dinp[i] = v.x + keep * dinp[i]; }
    if (col + 1u < p.K) { dinp[i + 1u] = v.y + keep * dinp[i + 1u]; }
    if (col + 2u < p.K) { dinp[i + 2u] = v.z + keep * dinp[i + 2u]; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let m0 = wg.y * BM;
  let k0 = wg.x * BN;
  if (lid < 16u) {
    lut[lid] = bitcast<f32>(NF4[lid]);
  }

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
      As[nxt + ln][sq][sc] = ra.x;
      As[nxt + ln][sq + 8u][sc] = ra.y;
      As[nxt + ln][sq + 16u][sc] = ra.z;
      As[nxt + ln][sq + 24u][sc] = ra.w;
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
    // move the next row's accumulators into acc[0], acc[1]: constant indices only, so acc stays in
    // registers whether or not the compiler unrolls this loop
    acc[0] = acc[2]; acc[1] = acc[3]; acc[2] = acc[4]; acc[3] = acc[5]; acc[4] = acc[6]; acc[5] = acc[7];
    acc[6] = acc[8]; acc[7] = acc[9]; acc[8] = acc[10]; acc[9] = acc[11]; acc[10] = acc[12]; acc[11] = acc[13];
    acc[12] = acc[14]; acc[13] = acc[15];
    r += select(1u, 61u, i == 3u); // rows 4ty .. 4ty+3, then 64+4ty .. 64+4ty+3
  }
}
