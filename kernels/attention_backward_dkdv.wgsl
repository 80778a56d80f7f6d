// attention_backward_dkdv: second half of the attention backward: dk and dv, summed over the query
// heads that share a kv head (G = NH/NKV heads h = kvh*G .. kvh*G+G-1):
//   dk[c] = scale sum_h sum_{t >= c, t < len} dscores[h,t,c] q[h,t]
//   dv[c] = sum_h sum_{t >= c, t < len} att[h,t,c] dy[h,t]
// Shapes: q, dy [B,T,NH,HS]; att, dscores [B,NH,T,T] (dscores from attention_backward.wgsl; only
// entries c <= t < lengths[b] are read); lengths [B]; dk, dv [B,T,NKV,HS] (written, = not +=;
// 0 for padded tokens c >= lengths[b]).
// Bindings: 0 Params {B, T, NH, NKV, HS, scale}, 1 q, 2 dy, 3 att, 4 dscores, 5 lengths, 6 dk (write),
//   7 dv (write). q, dy, dk, dv are read as vec4: HS % 4 == 0 and HS <= 128.
// Workgroup: 64 threads (8 x 8) per (block of 32 keys, kv head, b*2 + which): grid
//   (ceil(T/32), NKV, 2B); which = 0 computes dk, 1 computes dv. The workgroup walks row tiles of
//   32 query rows (t >= first key of the block) of each head of the group: the rows of q (or dy) go
//   to shared memory beside the matching 32 x 32 block of dscores (or att), [row][key]; thread
//   (ty, tx) owns keys 4ty .. 4ty+3 and dims vec4 tx + 8j. 21 KiB of workgroup memory.

struct Params { B: u32, T: u32, NH: u32, NKV: u32, HS: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> att: array<f32>;
@group(0) @binding(4) var<storage, read> dscores: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dv: array<vec4<f32>>;

const BK = 32u;   // keys per workgroup
const BT = 32u;   // query rows per tile
const RS = 33u;   // row stride of Bs in vec4
const AS = 9u;    // row stride of As in vec4 (32 keys / 4 + 1 pad)

var<workgroup> Bs: array<vec4<f32>, 1056>;   // [BT][RS] rows of q (dk) or dy (dv)
var<workgroup> As: array<vec4<f32>, 288>;    // [BT][AS] dscores (dk) or att (dv), [row][key]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let T = p.T;
  let HS4 = p.HS / 4u;            // head size in vec4
  let DV = (HS4 + 7u) / 8u;        // vec4 output columns per thread: tx + 8j, j < DV
  let NH = p.NH;
  let NKV = p.NKV;
  let G = NH / NKV;
  let b = wg.z / 2u;
  let which = wg.z % 2u;
  let kvh = wg.y;
  let c0 = wg.x * BK;
  let len = min(lengths[b], T);
  let tx = tid % 8u;
  let ty = tid / 8u;
  let qRow = NH * HS4;

  var acc: array<vec4<f32>, 16>;   // [i * 4 + j]: key c0 + 4ty + i, dims vec4 tx + 8j
  for (var e = 0u; e < 16u; e++) {
    acc[e] = vec4<f32>(0.0);
  }

  for (var g = 0u; g < G; g++) {
    let h = kvh * G + g;
    let qBase = b * T * qRow + h * HS4;
    let probBase = (b * NH + h) * T;
    for (var t0 = c0; t0 < len; t0 += BT) {
      for (var i = tid; i < BT * HS4; i += 64u) {
        let r = i / HS4;
        let d4 = i - r * HS4;
        let t = t0 + r;
        var val = vec4<f32>(0.0);
        if (t < len) {
          if (which == 0u) {
            val = q[qBase + t * qRow + d4];
          } else {
            val = dy[qBase + t * qRow + d4];
          }
        }
        Bs[r * RS + d4] = val;
      }
      for (var e = tid; e < BT * BK; e += 64u) {
        let r = e / BK;
        let cl = e % BK;
        let t = t0 + r;
        let c = c0 + cl;
        var val = 0.0;
        if (c <= t && t < len) {
          if (which == 0u) {
            val = dscores[(probBase + t) * T + c];
          } else {
            val = att[(probBase + t) * T + c];
          }
        }
        As[r * AS + cl / 4u][cl % 4u] = val;
      }
      workgroupBarrier();
      let nr = min(BT, len - t0);   // rows that exist (runtime trip count: no unrolling on lavapipe)
      for (var r = 0u; r < nr; r++) {
        let a = As[r * AS + ty];
        for (var j = 0u; j < 4u; j++) {
          if (j < DV) {
            let bv = Bs[r * RS + tx + 8u * j];
            acc[j] += a.x * bv;
            acc[4u + j] += a.y * bv;
            acc[8u + j] += a.z * bv;
            acc[12u + j] += a.w * bv;
          }
        }
      }
      workgroupBarrier();
    }
  }

  let factor = select(1.0, p.scale, which == 0u);
  for (var i = 0u; i < 4u; i++) {
    let c = c0 + 4u * ty + i;
    if (c < T) {
      let valid = c < len;
      for (var j = 0u; j < 4u; j++) {
        let d4 = tx + 8u * j;
        if (d4 < HS4) {
          let o = (b * T + c) * NKV * HS4 + kvh * HS4 + d4;
          let val = select(vec4<f32>(0.0), acc[i * 4u + j] * factor, valid);
          if (which == 0u) {
            dk[o] = val;
          } else {
            dv[o] = val;
          }
        }
      }
    }
  }
}
