// lm_head_forward: logits of chosen rows and (optionally) chosen vocabulary columns.
//   logits[r, j] = sum_c h[rows[r], c] * weight[v(j), c]      r < R, j < J, c < C
//   v(j) = cols[j], or v(j) = j when allCols = 1 (then J = V: every column)
// Shapes: h f32 [M, C] (the final hidden states of all M = B·T positions); rows u32 [R] (indices
//   into h); cols u32 [J] (vocabulary ids); weight [V, C] (the tied wte or lm_head.weight) in f32,
//   bf16 or f16 (Params.dtype 0/1/2; 16-bit values two per u32 word, element 2j in the low 16 bits,
//   little-endian as safetensors; bf16 = bits << 16, f16 via unpack2x16float); logits f32 [R, J].
//   Out-of-range indices (rows[r] >= M, v(j) >= V) read as zero rows instead of out of bounds.
// Vocabulary slices: a weight larger than one storage binding is bound a slice of rows at a time
//   (kernels see V rows, vocabulary ids v0 .. v0+V-1; v0 = 0 when unsliced). allCols = 1: J = V,
//   column j is id v0 + j, written at column v0 + j of logits rows `ldl` floats long (the whole
//   vocabulary). allCols = 0: column j reads row cols[j] - v0 (zero when outside the slice); with
//   accumulate = 1 the products are ADDED to logits (the host sums the slices: the slice holding
//   an id adds its product, the others add exact zeros). Unsliced: v0 = 0, ldl = J, accumulate = 0.
// Bindings: 0 Params {R, J, C, M, V, allCols, dtype, v0, ldl, accumulate}, 1 h (read), 2 weight (read, u32), 3 rows (read),
//   4 cols (read; not read when allCols = 1: bind rows again), 5 logits (write).
// Workgroup: 256 threads own a 32x128 tile of logits (rows r x cols j); thread (tx, ty) =
//   (lid % 32, lid / 32) owns rows 4ty..4ty+3 x cols 4tx..4tx+3. C is walked in steps of BK = 16
//   through double-buffered shared tiles As [c][r] and Bs [c][j] (both gathered rows, loaded
//   c-fastest: 16 threads read 64 contiguous bytes of one row, then transposed into shared memory,
//   rows padded by 4 floats); the gathered row offsets are computed once. With R = 32 the kernel
//   streams the weight once: it is bound by memory bandwidth. 21 KiB of workgroup memory.
// Grid: (ceil(J/128), ceil(R/32)).
// Backward (lm_head_backward) needs rows, cols, the weight, and dlogits; the weight is frozen.
// Shared code: lib/lm_head_tile.wgsl (tiles, micro-kernel), lib/weights.wgsl.

struct Params { R: u32, J: u32, C: u32, M: u32, V: u32, allCols: u32, dtype: u32, v0: u32, ldl: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read> cols: array<u32>;
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;

//!include lib/lm_head_tile.wgsl
//!include lib/weights.wgsl

const BJ: u32 = 128u; // tile width (BR = 32 rows, BK = 16 steps: lib/lm_head_tile.wgsl)

fn hIf(e: u32, ok: bool) -> f32 {
  if (ok) {
    return h[e];
  }
  return 0.0;
}

// offset of the h row of tile row r (and whether it exists)
fn rowOffset(r: u32) -> vec2<u32> {
  if (r < p.R) {
    let row = rows[r];
    if (row < p.M) {
      return vec2<u32>(row * p.C, 1u);
    }
  }
  return vec2<u32>(0u, 0u);
}

// offset of the weight row of tile column j (and whether it exists)
fn colOffset(j: u32) -> vec2<u32> {
  if (j < p.J) {
    var v = j;
    if (p.allCols == 0u) {
      v = cols[j] - p.v0; // wraps past V below the slice
    }
    if (v < p.V) {
      return vec2<u32>(v * p.C, 1u);
    }
  }
  return vec2<u32>(0u, 0u);
}

// logits[rowBase + col .. col + 3] = v (or += v), the columns < J
fn put(i: u32, x: f32) {
  if (p.accumulate != 0u) {
    logits[i] += x;
  } else {
    logits[i] = x;
  }
}

fn store4(rowBase: u32, col: u32, v: vec4<f32>) {
  var i = rowBase + col;
  if (p.allCols != 0u) {
    i += p.v0;
  }
  if (col + 3u < p.J) {
    put(i, v.x);
    put(i + 1u, v.y);
    put(i + 2u, v.z);
    put(i + 3u, v.w);
  } else {
    if (col < p.J) { put(i, v.x); }
    if (col + 1u < p.J) { put(i + 1u, v.y); }
    if (col + 2u < p.J) { put(i + 2u, v.z); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let C = p.C;
  let r0 = wg.y * BR;
  let j0 = wg.x * BJ;

  // load roles: channel c0 + lc of tile rows lr, lr + 16 (A) and tile columns lr + 16i (B)
  let lc = lid & 15u;
  let lr = lid >> 4u;
  let a0 = rowOffset(r0 + lr);
  let a1 = rowOffset(r0 + lr + 16u);
  let g0 = colOffset(j0 + lr);
  let g1 = colOffset(j0 + lr + 16u);
  let g2 = colOffset(j0 + lr + 32u);
  let g3 = colOffset(j0 + lr + 48u);
  let g4 = colOffset(j0 + lr + 64u);
  let g5 = colOffset(j0 + lr + 80u);
  let g6 = colOffset(j0 + lr + 96u);
  let g7 = colOffset(j0 + lr + 112u);
  let sq = lr >> 2u; // shared vec4 of tile row/col lr; lr + 16i is at sq + 4i
  let sc = lr & 3u;

  let tx = lid & 31u;
  let ty = lid >> 5u;

  var acc: array<vec4<f32>, 4>; // acc[i]: row 4ty + i

  let steps = (C + BK - 1u) / BK;
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
      let c = s * BK + lc;
      let ok = c < C;
      ra = vec2<f32>(hIf(a0.x + c, ok && a0.y != 0u), hIf(a1.x + c, ok && a1.y != 0u));
      rb0 = vec4<f32>(weightIf(g0.x + c, ok && g0.y != 0u), weightIf(g1.x + c, ok && g1.y != 0u),
                      weightIf(g2.x + c, ok && g2.y != 0u), weightIf(g3.x + c, ok && g3.y != 0u));
      rb1 = vec4<f32>(weightIf(g4.x + c, ok && g4.y != 0u), weightIf(g5.x + c, ok && g5.y != 0u),
                      weightIf(g6.x + c, ok && g6.y != 0u), weightIf(g7.x + c, ok && g7.y != 0u));
    }
    if (s > 0u) {
      lmTileFma(&acc, cur, tx, ty);
    }
    if (more) {
      As[nxt + lc][sq][sc] = ra.x;
      As[nxt + lc][sq + 4u][sc] = ra.y;
      Bs[nxt + lc][sq][sc] = rb0.x;
      Bs[nxt + lc][sq + 4u][sc] = rb0.y;
      Bs[nxt + lc][sq + 8u][sc] = rb0.z;
      Bs[nxt + lc][sq + 12u][sc] = rb0.w;
      Bs[nxt + lc][sq + 16u][sc] = rb1.x;
      Bs[nxt + lc][sq + 20u][sc] = rb1.y;
      Bs[nxt + lc][sq + 24u][sc] = rb1.z;
      Bs[nxt + lc][sq + 28u][sc] = rb1.w;
    }
    workgroupBarrier();
  }

  let j = j0 + 4u * tx;
  var r = r0 + 4u * ty;
  for (var i = 0u; i < 4u; i++) {
    if (r < p.R) {
      store4(r * p.ldl, j, acc[0]);
    }
    lmNextRow(&acc);
    r += 1u;
  }
}
