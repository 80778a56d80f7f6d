// attention_backward: first half of the attention backward: score gradients and dq.
// Given dy [B,T,NH,HS], the saved probabilities att [B,NH,T,T] (attention_forward mode 1), k, v
// [B,T,NKV,HS], lengths [B] and optionally dattLast [B,NH,T] (an extra gradient on the row
// t = lengths[b]-1 of the probabilities, e.g. from the ABFT loss), for every valid row t:
//   dP[t,c] = dy[t] . v[c]  (+ dattLast[c] when t = lengths[b]-1 and hasDattLast = 1)
//   D[t]    = sum_c att[t,c] dP[t,c]
//   dS[t,c] = att[t,c] (dP[t,c] - D[t])            -> dscores [B,NH,T,T]: dL/dS for the scaled
//                                                     scores S[t,c] = scale q[t].k[c]
//   dq[t]   = scale sum_{c <= t} dS[t,c] k[c]        -> dq [B,T,NH,HS] (written, 0 for padded rows)
// dscores is defined only for c <= t < lengths[b]; other entries are left untouched (garbage).
// attention_backward_dkdv.wgsl then reads dscores for dk and att for dv.
// Bindings: 0 Params {B, T, NH, NKV, HS, scale, hasDattLast}, 1 dy, 2 k, 3 v, 4 att, 5 lengths,
//   6 dattLast (read; any buffer when hasDattLast = 0), 7 dscores (write), 8 dq (write).
//   dy, k, v, dq are read as vec4: HS % 4 == 0 and HS <= 128.
// Workgroup: 64 threads (8 x 8) per (block of 32 query rows, head, batch): grid (ceil(T/32), NH, B).
//   Layout as in attention_forward.wgsl: the block's dy rows in shared memory, V (pass 1) and K
//   (pass 2) tiles of 16 keys; thread (ty, tx) owns rows ty + 8i, keys tx + 8j of a tile, dims
//   vec4 tx + 8j. Pass 1 writes dP into dscores and reduces D; pass 2 turns dP into dS in place
//   (each thread rereads only what it wrote) and accumulates dq = dS K. 28 KiB of workgroup memory.
// Shared code: lib/attention_block.wgsl (block layout, index helpers, K/V tile loads, the dP and dS·K loops).

struct Params { B: u32, T: u32, NH: u32, NKV: u32, HS: u32, scale: f32, hasDattLast: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> att: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read> dattLast: array<f32>;
@group(0) @binding(7) var<storage, read_write> dscores: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4<f32>>;

//!include lib/attention_block.wgsl

// Xs holds the dy rows of the block; Ps holds dS of the tile
var<workgroup> Dred: array<f32, 256>;        // [BR][8] partial row sums of P dP

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
      val = dy[g.qBase + t * g.qRow + d4];
    }
    Xs[r * RS + d4] = val;
  }

  // ---- pass 1: dP = dy V^T (+ dattLast), D = rowsum(P dP)
  var dpart: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) {
    dpart[i] = 0.0;
  }
  for (var c0 = 0u; c0 < g.nkeys; c0 += BC) {
    loadTile(V_TILE, c0, g, tid);
    workgroupBarrier();
    var s: array<f32, 8>;
    tileDots(&s, g, tx, ty);
    for (var i = 0u; i < 4u; i++) {
      let r = g.r0 + ty + 8u * i;
      for (var j = 0u; j < 2u; j++) {
        let c = c0 + tx + 8u * j;
        if (c <= r && r < g.len) {
          var dp = s[i * 2u + j];
          if (p.hasDattLast != 0u && r == g.last) {
            dp += dattLast[g.probBase + c];
          }
          let e = (g.probBase + r) * g.T + c;
          dpart[i] += att[e] * dp;
          dscores[e] = dp;
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    Dred[(ty + 8u * i) * 8u + tx] = dpart[i];
  }
  workgroupBarrier();
  var D: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) {
    let o = (ty + 8u * i) * 8u;
    D[i] = ((Dred[o] + Dred[o + 1u]) + (Dred[o + 2u] + Dred[o + 3u])) +
           ((Dred[o + 4u] + Dred[o + 5u]) + (Dred[o + 6u] + Dred[o + 7u]));
  }

  // ---- pass 2: dS = P (dP - D), dq = scale dS K
  var acc: array<vec4<f32>, 16>;
  for (var e = 0u; e < 16u; e++) {
    acc[e] = vec4<f32>(0.0);
  }
  for (var c0 = 0u; c0 < g.nkeys; c0 += BC) {
    loadTile(K_TILE, c0, g, tid);
    for (var i = 0u; i < 4u; i++) {
      let r = g.r0 + ty + 8u * i;
      for (var j = 0u; j < 2u; j++) {
        let cl = tx + 8u * j;
        let c = c0 + cl;
        var ds = 0.0;
        if (c <= r && r < g.len) {
          let e = (g.probBase + r) * g.T + c;
          ds = att[e] * (dscores[e] - D[i]);
          dscores[e] = ds;
        }
        Ps[(ty + 8u * i) * PS + cl / 4u][cl % 4u] = ds;
      }
    }
    workgroupBarrier();
    accumulatePKV(&acc, min(BC, g.kend - c0), g, tx, ty);
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let t = g.r0 + ty + 8u * i;
    if (t < g.T) {
      let valid = t < g.len;
      for (var j = 0u; j < 4u; j++) {
        let d4 = tx + 8u * j;
        if (d4 < g.HS4) {
          dq[g.qBase + t * g.qRow + d4] = select(vec4<f32>(0.0), acc[i * 4u + j] * p.scale, valid);
        }
      }
    }
  }
}
