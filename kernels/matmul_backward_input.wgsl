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

struct Params { M: u32, N: u32, K: u32, sharedW: u32, accumulate: u32, dtype: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
const ROW4: u32 = 33u; // vec4s per shared row: 128 floats + 4 of padding

var<workgroup> As: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + n][m / 4]
var<workgroup> Bs: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + n][k / 4]

fn weightAt(e: u32) -> f32 {
  if (p.dtype == 0u) {
    return bitcast<f32>(weight[e]);
  }
  let bits = (weight[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (p.dtype == 1u) {
    return bitcast<f32>(bits << 16u);
  }
  return unpack2x16float(bits).x;
}

fn doutIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return dout[e];
  }
  return 0.0;
}

fn weightIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return weightAt(e);
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
      Bs[nxt + br][bq][bcc] = rb.x;
      Bs[nxt + br + 2u][bq][bcc] = rb.y;
      Bs[nxt + br + 4u][bq][bcc] = rb.z;
      Bs[nxt + br + 6u][bq][bcc] = rb.w;
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
    // move the next row's accumulators into acc[0], acc[1]: constant indices only, so acc stays in
    // registers whether or not the compiler unrolls this loop (lavapipe compiles it once)
    acc[0] = acc[2]; acc[1] = acc[3]; acc[2] = acc[4]; acc[3] = acc[5]; acc[4] = acc[6]; acc[5] = acc[7];
    acc[6] = acc[8]; acc[7] = acc[9]; acc[8] = acc[10]; acc[9] = acc[11]; acc[10] = acc[12]; acc[11] = acc[13];
    acc[12] = acc[14]; acc[13] = acc[15];
    r += select(1u, 61u, i == 3u); // rows 4ty .. 4ty+3, then 64+4ty .. 64+4ty+3
  }
}
