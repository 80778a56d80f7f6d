// attention_forward: causal softmax attention with grouped-query heads over right-padded sequences.
//   y[b,t,h,:] = sum_{c <= t} softmax_c(scale * q[b,t,h,:] . k[b,c,h/G,:]) * v[b,c,h/G,:]   (G = NH/NKV)
// Shapes: q [B,T,NH,HS], k and v [B,T,NKV,HS], lengths [B] (u32, sequence b holds tokens
// t < lengths[b]; values above T are clamped to T), y [B,T,NH,HS].
// Optional probabilities (Params.mode): 0 none (probs is a dummy and never touched);
//   1 full: probs = att [B,NH,T,T], row t < lengths[b] holds the softmax over columns c <= t, every
//     other entry (c > t, padded rows) is 0;
//   2 last: probs = attLast [B,NH,T], the row t = lengths[b]-1 of att (all 0 when lengths[b] = 0).
// Padded rows (t >= lengths[b]) get y = 0; padded tokens are never read, so they cannot leak into
// valid rows (they may hold anything, NaN included). Softmax in f32 with max subtraction.
// Bindings: 0 Params {B, T, NH, NKV, HS, scale, mode}, 1 q (read), 2 k (read), 3 v (read),
//   4 lengths (read), 5 y (write), 6 probs (write; see mode). q, k, v, y are read as vec4: HS % 4 == 0.
// HS (head size): a multiple of 4, at most 128 (the shared tiles are sized for 128).
// Workgroup: 64 threads (8 x 8) per (block of BR = 32 query rows, head h, batch b): grid
//   (ceil(T/32), NH, B). The block's Q rows sit in shared memory; K and V tiles of BC = 16 keys pass
//   through one shared buffer (K, then V); online softmax (running max m, running sum l per row).
//   Thread (ty, tx) owns rows ty + 8i (i < 4): scores for keys tx + 8j (j < 2) of each tile and the
//   output dims 4*(tx + 8j) .. +3 (j < ceil(HS/32)). Shared rows are padded to 33 vec4 so that
//   the strided row reads fall into different banks. 30 KiB of workgroup memory. Row groups i
//   without a valid row (the tail block, e.g. rows 160..191 of T = 163) skip their FMAs, and the
//   P V loop runs over the keys that exist only.
// Full probabilities: each thread writes its raw scaled scores into att while it goes, then, once the
//   final m and l of each row are known, the workgroup rewrites them as exp(s - m) / l (and zeros).
// Backward needs: att (mode 1) or a recomputation; q, k, v, lengths (see attention_backward.wgsl).
// Shared code: lib/attention_block.wgsl (block layout, index helpers, K/V tile loads, the S and P·V loops).

struct Params { B: u32, T: u32, NH: u32, NKV: u32, HS: u32, scale: f32, mode: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> probs: array<f32>;

//!include lib/attention_block.wgsl

const NEG = -1.0e30;   // masked score: exp(NEG - m) == 0 for any finite m

// Xs holds the q rows; Ps holds exp(s - m) of the tile
var<workgroup> Ss: array<vec4<f32>, 160>;    // [BR][PS] scaled, masked scores of the tile
var<workgroup> rowM: array<f32, 32>;
var<workgroup> rowL: array<f32, 32>;

fn max4(a: vec4<f32>) -> f32 {
  return max(max(a.x, a.y), max(a.z, a.w));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let g = blockOf(wg);
  let tx = tid % 8u;
  let ty = tid / 8u;

  for (var i = tid; i < BR * g.HS4; i += 64u) {
    let r = i / g.HS4;
    let d4 = i - r * g.HS4;
    let t = g.r0 + r;
    var val = vec4<f32>(0.0);
    if (t < g.kend) {
      val = q[g.qBase + t * g.qRow + d4];
    }
    Xs[r * RS + d4] = val;
  }

  var acc: array<vec4<f32>, 16>;   // [i * 4 + j]: row ty + 8i, dims vec4 tx + 8j
  var m: array<f32, 4>;
  var l: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) {
    m[i] = NEG;
    l[i] = 0.0;
    for (var j = 0u; j < 4u; j++) {
      acc[i * 4u + j] = vec4<f32>(0.0);
    }
  }

  for (var c0 = 0u; c0 < g.nkeys; c0 += BC) {
    // ---- K tile
    loadTile(K_TILE, c0, g, tid);
    workgroupBarrier();

    // ---- scores of the thread's 4 x 2 elements
    var s: array<f32, 8>;   // [i * 2 + j]
    tileDots(&s, g, tx, ty);
    for (var i = 0u; i < 4u; i++) {
      let r = g.r0 + ty + 8u * i;
      for (var j = 0u; j < 2u; j++) {
        let cl = tx + 8u * j;
        let c = c0 + cl;
        var sv = s[i * 2u + j] * p.scale;
        if (c > r || c >= g.kend) {
          sv = NEG;
        } else if (r < g.len) {
          // raw scores; normalized once the row's final max and sum are known
          if (p.mode == 1u) {
            probs[(g.probBase + r) * g.T + c] = sv;
          } else if (p.mode == 2u && r == g.last) {
            probs[g.probBase + c] = sv;
          }
        }
        s[i * 2u + j] = sv;
        Ss[(ty + 8u * i) * PS + cl / 4u][cl % 4u] = sv;
      }
    }
    workgroupBarrier();

    // ---- online softmax: new row max, rescale, probabilities of the tile
    for (var i = 0u; i < 4u; i++) {
      let row = (ty + 8u * i) * PS;
      let mx = max(max(max4(Ss[row]), max4(Ss[row + 1u])), max(max4(Ss[row + 2u]), max4(Ss[row + 3u])));
      let mNew = max(m[i], mx);
      let alpha = exp(m[i] - mNew);
      m[i] = mNew;
      l[i] *= alpha;
      for (var j = 0u; j < 4u; j++) {
        acc[i * 4u + j] *= alpha;
      }
      for (var j = 0u; j < 2u; j++) {
        let cl = tx + 8u * j;
        Ps[row + cl / 4u][cl % 4u] = exp(s[i * 2u + j] - mNew);
      }
    }
    // ---- V tile (every thread is done with K since the last barrier)
    loadTile(V_TILE, c0, g, tid);
    workgroupBarrier();

    // ---- l += row sums of P, acc += P V over the tile's keys that exist (P is 0 beyond them)
    for (var i = 0u; i < 4u; i++) {
      let row = (ty + 8u * i) * PS;
      let sum4 = (Ps[row] + Ps[row + 1u]) + (Ps[row + 2u] + Ps[row + 3u]);
      l[i] += (sum4.x + sum4.y) + (sum4.z + sum4.w);
    }
    let nc = min(BC, g.kend - c0);   // a runtime trip count also keeps lavapipe from unrolling it
    accumulatePKV(&acc, nc, g, tx, ty);
    workgroupBarrier();
  }

  // ---- y (zero for padded rows)
  for (var i = 0u; i < 4u; i++) {
    let t = g.r0 + ty + 8u * i;
    if (t < g.T) {
      let valid = t < g.len;
      let inv = 1.0 / select(1.0, l[i], valid);
      for (var j = 0u; j < 4u; j++) {
        let d4 = tx + 8u * j;
        if (d4 < g.HS4) {
          y[g.qBase + t * g.qRow + d4] = select(vec4<f32>(0.0), acc[i * 4u + j] * inv, valid);
        }
      }
    }
  }

  if (p.mode == 0u) {
    return;
  }
  if (tx == 0u) {
    for (var i = 0u; i < 4u; i++) {
      rowM[ty + 8u * i] = m[i];
      rowL[ty + 8u * i] = select(1.0, l[i], l[i] > 0.0);
    }
  }
  storageBarrier();     // the raw scores written by other threads are visible
  workgroupBarrier();   // rowM, rowL
  if (p.mode == 1u) {
    let rows = min(BR, g.T - g.r0);
    for (var e = tid; e < rows * g.T; e += 64u) {
      let r = e / g.T;
      let c = e - r * g.T;
      let t = g.r0 + r;
      var out = 0.0;
      if (t < g.len && c <= t) {
        out = exp(probs[(g.probBase + t) * g.T + c] - rowM[r]) / rowL[r];
      }
      probs[(g.probBase + t) * g.T + c] = out;
    }
  } else if ((g.len > 0u && g.last >= g.r0 && g.last < g.r0 + BR) || (g.len == 0u && g.r0 == 0u)) {
    let r = g.last - g.r0;
    for (var c = tid; c < g.T; c += 64u) {
      var out = 0.0;
      if (g.len > 0u && c <= g.last) {
        out = exp(probs[g.probBase + c] - rowM[r]) / rowL[r];
      }
      probs[g.probBase + c] = out;
    }
  }
}
