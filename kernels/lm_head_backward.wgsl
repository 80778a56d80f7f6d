// lm_head_backward: the hidden-state gradient of lm_head_forward (the LM head weight is frozen: no dW).
//   dh[rows[r], c] += sum_j dlogits[r, j] * weight[v(j), c]      r < R, c < C, j < J
//   v(j) = cols[j], or j when allCols = 1 (J = V)
// ACCUMULATED (+=) into dh [M, C] (only the R chosen rows change). rows must be distinct: two
// equal rows would race on the same dh row. Out-of-range indices are skipped (rows[r] >= M is not
// written, v(j) >= V reads a zero row).
// Shapes: dlogits f32 [R, J]; weight [V, C] in f32, bf16 or f16 (Params.dtype 0/1/2, packing as in
//   lm_head_forward.wgsl); rows u32 [R]; cols u32 [J]; dh f32 [M, C];
//   scratch f32 [splits, R, C] (splits > 1 only).
// Split-K: the J columns are cut into `splits` chunks of `chunk` (a multiple of 16) so that a few
//   rows against the whole vocabulary (R = 32, J = 50257: 10 output tiles at C = 1280) still fill
//   the GPU. With splits = 1 entry `main` adds into dh directly; with splits > 1 it WRITES partial
//   sums to scratch and entry `reduce` adds their sum into dh.
// Vocabulary slices (as in lm_head_forward): the bound weight holds ids v0 .. v0+V-1; allCols = 1
//   reads dlogits columns v0 + j of rows `ldl` floats long; allCols = 0 reads row cols[j] - v0 (zero
//   outside the slice). Every slice adds into dh. Unsliced: v0 = 0, ldl = J.
// Bindings: 0 Params {R, J, C, M, V, allCols, splits, chunk, dtype, v0, ldl}, 1 dlogits (read), 2 weight (read, u32),
//   3 rows (read), 4 cols (read; unread when allCols = 1: bind rows again), 5 dh (read_write),
//   6 scratch (read_write; untouched when splits = 1: bind any other writable buffer).
// Entry `main`: 256 threads own a 32x128 tile of the gradient (rows r x channels c); thread
//   (tx, ty) = (lid % 32, lid / 32) owns rows 4ty..4ty+3 x channels 4tx..4tx+3. J is walked in steps
//   of BK = 16 through double-buffered shared tiles As [j][r] (dlogits, loaded j-fastest and
//   transposed) and Bs [j][c] (gathered weight rows, loaded c-fastest: 128 threads read one
//   contiguous row segment). 21 KiB of workgroup memory.
//   Grid: (ceil(C/128), ceil(R/32), splits).
// Entry `reduce`: one thread per element of [R, C]; grid1d over R·C with 256 threads per
//   workgroup (index = gid.x + gid.y·num_workgroups.x·256).
// Shared code: lib/lm_head_tile.wgsl (tiles, micro-kernel), lib/weights.wgsl.

struct Params { R: u32, J: u32, C: u32, M: u32, V: u32, allCols: u32, splits: u32, chunk: u32, dtype: u32, v0: u32, ldl: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dlogits: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read> cols: array<u32>;
@group(0) @binding(5) var<storage, read_write> dh: array<f32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;

//!include lib/lm_head_tile.wgsl
//!include lib/weights.wgsl

const BC: u32 = 128u; // tile width (BR = 32 rows, BK = 16 steps: lib/lm_head_tile.wgsl)

fn dlogitsIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return dlogits[e];
  }
  return 0.0;
}

// weight[v(j), c] for tile channel c (cOk: c < C), zero past jEnd or for a bad vocabulary id
fn weightOf(j: u32, jEnd: u32, c: u32, cOk: bool) -> f32 {
  if (cOk && j < jEnd) {
    var v = j;
    if (p.allCols == 0u) {
      v = cols[j] - p.v0; // wraps past V below the slice
    }
    if (v < p.V) {
      return weightAt(v * p.C + c);
    }
  }
  return 0.0;
}

// row r of the result: added into dh (splits = 1) or written to this split's scratch slice
fn put4(r: u32, col: u32, sBase: u32, v: vec4<f32>) {
  if (r >= p.R) {
    return;
  }
  let C = p.C;
  if (p.splits == 1u) {
    let row = rows[r];
    if (row >= p.M) {
      return;
    }
    let i = row * C + col;
    if (col + 3u < C) {
      dh[i] += v.x;
      dh[i + 1u] += v.y;
      dh[i + 2u] += v.z;
      dh[i + 3u] += v.w;
    } else {
      if (col < C) { dh[i] += v.x; }
      if (col + 1u < C) { dh[i + 1u] += v.y; }
      if (col + 2u < C) { dh[i + 2u] += v.z; }
    }
  } else {
    let i = sBase + r * C + col;
    if (col + 3u < C) {
      scratch[i] = v.x;
      scratch[i + 1u] = v.y;
      scratch[i + 2u] = v.z;
      scratch[i + 3u] = v.w;
    } else {
      if (col < C) { scratch[i] = v.x; }
      if (col + 1u < C) { scratch[i + 1u] = v.y; }
      if (col + 2u < C) { scratch[i + 2u] = v.z; }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let R = p.R;
  let J = p.J;
  let C = p.C;
  let r0 = wg.y * BR;
  let c0 = wg.x * BC;
  let split = wg.z;
  let jStart = split * p.chunk;
  let jEnd = min(J, jStart + p.chunk);

  // A (dlogits) load roles: column j + lj of tile rows lr, lr + 16
  let lj = lid & 15u;
  let lr = lid >> 4u;
  let aOk0 = r0 + lr < R;
  let aOk1 = r0 + lr + 16u < R;
  var colBase = 0u; // where column 0 of this slice sits in a dlogits row
  if (p.allCols != 0u) {
    colBase = p.v0;
  }
  let aOff0 = (r0 + lr) * p.ldl + colBase;
  let aOff1 = (r0 + lr + 16u) * p.ldl + colBase;
  let sq = lr >> 2u;
  let sc = lr & 3u;
  // B (weight) load roles: channel c0 + bc of the weight rows of columns j + br + 2i
  let bc = lid & 127u;
  let br = lid >> 7u;
  let bcOk = c0 + bc < C;
  let bq = bc >> 2u;
  let bcc = bc & 3u;

  let tx = lid & 31u;
  let ty = lid >> 5u;

  var acc: array<vec4<f32>, 4>; // acc[i]: row 4ty + i

  // jEnd may be <= jStart for trailing splits: then steps = 0 and the tile writes zeros
  let steps = (max(jEnd, jStart) - jStart + BK - 1u) / BK;
  var ra: vec2<f32>;
  var rb0: vec4<f32>;
  var rb1: vec4<f32>;

  // iteration s issues the global loads of step s, computes step s - 1 from shared memory while
  // they are in flight, then stores step s into the other buffer: one barrier per step
  for (var s = 0u; s <= steps; s++) {
    let cur = ((s + 1u) & 1u) * BK; // buffer of step s - 1
    let nxt = BK - cur; // buffer of step s
    let more = s < steps;
    if (more) {
      let j = jStart + s * BK + lj;
      ra = vec2<f32>(dlogitsIf(aOff0 + j, aOk0 && j < jEnd), dlogitsIf(aOff1 + j, aOk1 && j < jEnd));
      let jb = jStart + s * BK + br;
      let c = c0 + bc;
      rb0 = vec4<f32>(weightOf(jb, jEnd, c, bcOk), weightOf(jb + 2u, jEnd, c, bcOk),
                      weightOf(jb + 4u, jEnd, c, bcOk), weightOf(jb + 6u, jEnd, c, bcOk));
      rb1 = vec4<f32>(weightOf(jb + 8u, jEnd, c, bcOk), weightOf(jb + 10u, jEnd, c, bcOk),
                      weightOf(jb + 12u, jEnd, c, bcOk), weightOf(jb + 14u, jEnd, c, bcOk));
    }
    if (s > 0u) {
      lmTileFma(&acc, cur, tx, ty);
    }
    if (more) {
      As[nxt + lj][sq][sc] = ra.x;
      As[nxt + lj][sq + 4u][sc] = ra.y;
      Bs[nxt + br][bq][bcc] = rb0.x;
      Bs[nxt + br + 2u][bq][bcc] = rb0.y;
      Bs[nxt + br + 4u][bq][bcc] = rb0.z;
      Bs[nxt + br + 6u][bq][bcc] = rb0.w;
      Bs[nxt + br + 8u][bq][bcc] = rb1.x;
      Bs[nxt + br + 10u][bq][bcc] = rb1.y;
      Bs[nxt + br + 12u][bq][bcc] = rb1.z;
      Bs[nxt + br + 14u][bq][bcc] = rb1.w;
    }
    workgroupBarrier();
  }

  let sBase = split * R * C;
  let col = c0 + 4u * tx;
  var r = r0 + 4u * ty;
  for (var i = 0u; i < 4u; i++) {
    put4(r, col, sBase, acc[0]);
    lmNextRow(&acc);
    r += 1u;
  }
}

@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let RC = p.R * p.C;
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= RC) {
    return;
  }
  let row = rows[i / p.C];
  if (row >= p.M) {
    return;
  }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    sum += scratch[s * RC + i];
  }
  dh[row * p.C + i % p.C] += sum;
}
