// The query-block layout shared by attention_forward and attention_backward: one workgroup of 64
// threads (8 x 8) per (block of BR = 32 query rows, head h, batch b), grid (ceil(T/32), NH, B).
//   Xs [BR][RS]: the block's query-side rows (q rows in the forward, dy rows in the backward).
//   KVs [BC][RS]: a tile of BC = 16 keys of k or v (loadTile).
//   Ps [BR][PS]: one value per (row, key) of the tile (probabilities in the forward, dS in the backward).
//   Shared rows are padded (RS = 33 vec4, PS = 5 vec4) so that the strided row reads fall into
//   different banks. Thread (ty, tx) owns rows ty + 8i (i < 4), keys tx + 8j (j < 2) of a tile and
//   the output dims vec4 tx + 8j (j < DV = ceil(HS/32)); acc[i * 4 + j] holds row ty + 8i, dims
//   vec4 tx + 8j. Row groups i without a valid row (i >= NI) skip their FMAs.
// The includer declares `k`, `v`: array<vec4<f32>> (read), `lengths`: array<u32> (read) and Params
// `p` with u32 fields T, NH, NKV, HS; it uses @workgroup_size(64).
// The functions take ptr<function> to the caller's arrays (core WGSL); once inlined (Mesa, lavapipe
// included, inlines every call; GPU shader compilers inline small functions like these) the
// constant-trip loops over i, j unroll as before and the arrays stay in registers.

const BR = 32u;        // query rows per workgroup
const BC = 16u;        // keys per tile
const RS = 33u;        // row stride of Xs and KVs in vec4 (128/4 + 1 pad)
const PS = 5u;         // row stride of Ps (and the forward's Ss) in vec4 (16/4 + 1 pad)

var<workgroup> Xs: array<vec4<f32>, 1056>;   // [BR][RS] the block's q (forward) or dy (backward) rows
var<workgroup> KVs: array<vec4<f32>, 528>;   // [BC][RS] a K or V tile
var<workgroup> Ps: array<vec4<f32>, 160>;    // [BR][PS] a value per (row, key) of the tile

// Index helpers of one workgroup's block: all uniform across the workgroup (they depend on the
// workgroup id only, so loops bounded by them may hold barriers); the thread's (tx, ty) =
// (tid % 8, tid / 8) are kept apart for that reason.
struct Block {
  T: u32,
  HS4: u32,       // head size in vec4
  DV: u32,        // vec4 output columns per thread: tx + 8j, j < DV
  r0: u32,        // first query row of the block
  len: u32,       // tokens of sequence b (lengths[b] clamped to T)
  kend: u32,      // keys 0..kend-1 are all that the valid rows of this block can see; rows t >= kend are padding
  nkeys: u32,     // keys covered by the tiles (0 when the block is all padding)
  NI: u32,        // row groups i (rows ty + 8i) that hold a valid row: the rest skip their FMAs
  qRow: u32,      // vec4 stride between tokens of q, y, dy, dq
  kRow: u32,      // vec4 stride between tokens of k and v
  qBase: u32,     // vec4 offset of (b, token 0, head h) in q, y, dy, dq
  kBase: u32,     // vec4 offset of (b, token 0, kv head h / G) in k and v
  probBase: u32,  // row index base into att / attLast / dattLast: (b * NH + h) * T
  last: u32,      // len - 1: the last valid row (wraps when len == 0, then matches no row)
}

fn blockOf(wg: vec3<u32>) -> Block {
  var g: Block;
  let T = p.T;
  let NH = p.NH;
  let b = wg.z;
  let h = wg.y;
  let kvh = h / (NH / p.NKV);
  g.T = T;
  g.HS4 = p.HS / 4u;
  g.DV = (g.HS4 + 7u) / 8u;
  g.r0 = wg.x * BR;
  g.len = min(lengths[b], T);
  g.kend = min(g.r0 + BR, g.len);
  g.nkeys = 0u;
  g.NI = 0u;
  if (g.kend > g.r0) {
    g.nkeys = g.kend;
    g.NI = (g.kend - g.r0 + 7u) / 8u;
  }
  g.qRow = NH * g.HS4;
  g.kRow = p.NKV * g.HS4;
  g.qBase = b * T * g.qRow + h * g.HS4;
  g.kBase = b * T * g.kRow + kvh * g.HS4;
  g.probBase = (b * NH + h) * T;
  g.last = g.len - 1u;
  return g;
}

const V_TILE = 0u;
const K_TILE = 1u;

// KVs = keys c0 .. c0 + BC - 1 of v (src = V_TILE) or k (K_TILE), zero from kend on
fn loadTile(src: u32, c0: u32, g: Block, tid: u32) {
  for (var i = tid; i < BC * g.HS4; i += 64u) {
    let c = i / g.HS4;
    let d4 = i - c * g.HS4;
    var val = vec4<f32>(0.0);
    if (c0 + c < g.kend) {
      if (src == V_TILE) {
        val = v[g.kBase + (c0 + c) * g.kRow + d4];
      } else {
        val = k[g.kBase + (c0 + c) * g.kRow + d4];
      }
    }
    KVs[c * RS + d4] = val;
  }
}

// s[i * 2 + j] = Xs row ty + 8i . KVs key tx + 8j (0 for the row groups i >= NI)
fn tileDots(s: ptr<function, array<f32, 8>>, g: Block, tx: u32, ty: u32) {
  for (var e = 0u; e < 8u; e++) {
    (*s)[e] = 0.0;
  }
  for (var d4 = 0u; d4 < g.HS4; d4++) {
    let k0 = KVs[tx * RS + d4];
    let k1 = KVs[(tx + 8u) * RS + d4];
    for (var i = 0u; i < 4u; i++) {
      if (i < g.NI) {
        let x = Xs[(ty + 8u * i) * RS + d4];
        (*s)[i * 2u] += dot(x, k0);
        (*s)[i * 2u + 1u] += dot(x, k1);
      }
    }
  }
}

// acc[i * 4 + j] += sum over the tile's first nc keys c of Ps[row ty + 8i][c] * KVs[c][dims tx + 8j]
fn accumulatePKV(acc: ptr<function, array<vec4<f32>, 16>>, nc: u32, g: Block, tx: u32, ty: u32) {
  for (var c = 0u; c < nc; c++) {
    var pc: array<f32, 4>;
    for (var i = 0u; i < 4u; i++) {
      pc[i] = Ps[(ty + 8u * i) * PS + c / 4u][c % 4u];
    }
    let row = c * RS + tx;
    for (var j = 0u; j < 4u; j++) {
      if (j < g.DV) {
        let kv = KVs[row + 8u * j];
        for (var i = 0u; i < 4u; i++) {
          if (i < g.NI) {
            (*acc)[i * 4u + j] += pc[i] * kv;
          }
        }
      }
    }
  }
}
