// matmul_backward_weight: the weight (and bias) gradient of matmul_forward (out = inp · weightᵀ + bias).
//   dweight[b, n, k] += sum_m dout[b, m, n] * inp[b, m, k]      n < N, k < K, m < M
//   dbias[b, n]      += sum_m dout[b, m, n]                      (hasBias = 1)
// ACCUMULATED (+=), the parameter-gradient convention. f32 weights only (trained weights are f32).
// One weight shared by every batch is the unbatched case with M·batch rows (src/ops/matmul.ts
// folds it); batch > 1 here means per-batch weights: dweight [batch, N, K], dbias [batch, N].
// Shapes: dout f32 [batch, M, N]; inp f32 [batch, M, K]; dweight f32 [batch, N, K]; dbias f32 [batch, N];
//   scratch f32 [batch, splits, N·K + N] (splits > 1 only).
// Split-K: the M rows are cut into `splits` chunks of `chunk` rows (a multiple of 8) so that small
//   outputs (e.g. 1280x1280 from 5120 rows: 100 tiles) still fill the GPU. With splits = 1, entry
//   `main` adds straight into dweight/dbias; with splits > 1 it WRITES each chunk's partial sums to
//   scratch and entry `reduce` then adds the splits' sum into dweight/dbias (a second dispatch).
// Bindings: 0 Params {M, N, K, batch, hasBias, splits, chunk}, 1 dout (read), 2 inp (read),
//   3 dweight (read_write), 4 dbias (read_write; not touched when hasBias = 0), 5 scratch
//   (read_write; not touched when splits = 1). Unused writable bindings may be any buffer that
//   does not alias another writable binding (src/ops/matmul.ts binds a small placeholder).
// Entry `main`: 256 threads own a 128x128 tile of dweight (rows n x cols k), 8x8 per thread as in
//   matmul_forward. M is walked in steps of BK = 8 through double-buffered shared tiles As [m][n]
//   (dout rows) and Bs [m][k] (inp rows), both loaded column-fastest (128 threads read a contiguous
//   row segment) with no transposition; rows padded to 132 floats. The workgroups of the first
//   column of tiles (wg.x = 0) also sum their As rows into dbias (threads 0..127, one n each).
//   Grid: (ceil(K/128), ceil(N/128), batch·splits), z = b·splits + split.
// Entry `reduce`: one thread per element of [batch, N·K + N]; grid1d over batch·(N·K + N) with 256
//   threads per workgroup (index = gid.x + gid.y·num_workgroups.x·256).
// Shared code: lib/matmul_tile.wgsl (tiles, micro-kernel).

struct Params { M: u32, N: u32, K: u32, batch: u32, hasBias: u32, splits: u32, chunk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

//!include lib/matmul_tile.wgsl

fn doutIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return dout[e];
  }
  return 0.0;
}

fn inpIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return inp[e];
  }
  return 0.0;
}

// dweight[row, col .. col + 3] += v (splits = 1), or the same place of this split's scratch slice = v;
// the columns < K
fn put4(row: u32, col: u32, wBase: u32, sBase: u32, v: vec4<f32>) {
  let i = row * p.K + col;
  let n = min(p.K - min(col, p.K), 4u); // columns in range
  if (p.splits == 1u) {
    let d = wBase + i;
    if (n == 4u) {
      dweight[d] += v.x;
      dweight[d + 1u] += v.y;
      dweight[d + 2u] += v.z;
      dweight[d + 3u] += v.w;
    } else {
      if (n > 0u) { dweight[d] += v.x; }
      if (n > 1u) { dweight[d + 1u] += v.y; }
      if (n > 2u) { dweight[d + 2u] += v.z; }
    }
  } else {
    let d = sBase + i;
    if (n == 4u) {
      scratch[d] = v.x;
      scratch[d + 1u] = v.y;
      scratch[d + 2u] = v.z;
      scratch[d + 3u] = v.w;
    } else {
      if (n > 0u) { scratch[d] = v.x; }
      if (n > 1u) { scratch[d + 1u] = v.y; }
      if (n > 2u) { scratch[d + 2u] = v.z; }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let b = wg.z / p.splits;
  let split = wg.z % p.splits;
  let mStart = split * p.chunk;
  let mEnd = min(M, mStart + p.chunk);
  let n0 = wg.y * BM;
  let k0 = wg.x * BN;

  // load roles: column c of the tile, rows m + lr, m + lr + 2, m + lr + 4, m + lr + 6 of the step
  let c = lid & 127u;
  let lr = lid >> 7u;
  let aOk = n0 + c < N;
  let bOk = k0 + c < K;
  let aOff = b * M * N + n0 + c;
  let bOff = b * M * K + k0 + c;
  let q = c >> 2u;
  let qc = c & 3u;

  let tx = lid & 15u;
  let ty = lid >> 4u;
  let doBias = p.hasBias != 0u && wg.x == 0u && lid < BM;

  var acc: array<vec4<f32>, 16>;
  var biasAcc = 0.0;

  // mEnd may be <= mStart for trailing splits: then steps = 0 and the tile writes zeros
  let steps = (max(mEnd, mStart) - mStart + BK - 1u) / BK;
  var ra: vec4<f32>;
  var rb: vec4<f32>;

  // iteration s issues the global loads of step s, computes step s - 1 from shared memory while
  // they are in flight, then stores step s into the other buffer: one barrier per step
  for (var s = 0u; s <= steps; s++) {
    let cur = ((s + 1u) & 1u) * BK; // buffer of step s - 1
    let nxt = BK - cur; // buffer of step s
    let more = s < steps;
    if (more) {
      let m = mStart + s * BK + lr;
      ra = vec4<f32>(doutIf(aOff + m * N, aOk && m < mEnd), doutIf(aOff + (m + 2u) * N, aOk && m + 2u < mEnd),
                     doutIf(aOff + (m + 4u) * N, aOk && m + 4u < mEnd), doutIf(aOff + (m + 6u) * N, aOk && m + 6u < mEnd));
      rb = vec4<f32>(inpIf(bOff + m * K, bOk && m < mEnd), inpIf(bOff + (m + 2u) * K, bOk && m + 2u < mEnd),
                     inpIf(bOff + (m + 4u) * K, bOk && m + 4u < mEnd), inpIf(bOff + (m + 6u) * K, bOk && m + 6u < mEnd));
    }
    if (s > 0u) {
      tileFma(&acc, cur, tx, ty);
      if (doBias) {
        for (var kk = 0u; kk < BK; kk++) {
          biasAcc += As[cur + kk][lid >> 2u][lid & 3u];
        }
      }
    }
    if (more) {
      storeATall(nxt + lr, q, qc, ra);
      storeBTall(nxt + lr, q, qc, rb);
    }
    workgroupBarrier();
  }

  let NK = N * K;
  let wBase = b * NK;
  let sBase = wg.z * (NK + N);
  if (doBias && n0 + lid < N) {
    if (p.splits == 1u) {
      dbias[b * N + n0 + lid] += biasAcc;
    } else {
      scratch[sBase + NK + n0 + lid] = biasAcc;
    }
  }
  let c0 = k0 + 4u * tx;
  let c1 = c0 + 64u;
  var r = n0 + 4u * ty;
  for (var i = 0u; i < 8u; i++) {
    if (r < N) {
      put4(r, c0, wBase, sBase, acc[0]);
      put4(r, c1, wBase, sBase, acc[1]);
    }
    r += nextRow(&acc, i);
  }
}

@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let NK = p.N * p.K;
  let per = NK + p.N;
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.batch * per) {
    return;
  }
  let b = i / per;
  let e = i % per;
  if (e >= NK && p.hasBias == 0u) {
    return;
  }
  let base = b * p.splits * per + e;
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    sum += scratch[base + s * per];
  }
  if (e < NK) {
    dweight[b * NK + e] += sum;
  } else {
    dbias[b * p.N + e - NK] += sum;
  }
}
