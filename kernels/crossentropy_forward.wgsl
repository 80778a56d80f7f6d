// crossentropy_forward: per-row log-sum-exp and cross-entropy over selected rows of logits.
//   lse[r]  = log Σ_v exp(logits[r, v])
//   loss[r] = lse[r] − logits[r, target[r]]
//   mode 1: out[r, v] = softmax(logits[r])_v = exp(logits[r, v] − lse[r])
//   mode 2: out[r, v] = log_softmax(logits[r])_v = logits[r, v] − lse[r]
//   mode 0: out is not touched (bind any buffer not otherwise bound).
// Shapes: logits f32 [R, V] (rows already selected, e.g. the last position of each prompt),
//   targets u32 [R] (clamped to V−1; the host checks them), loss f32 [R], lse f32 [R], out f32 [R, V].
// Bindings: 0 Params {R, V, mode}, 1 logits (read), 2 targets (read), 3 loss (write), 4 lse (write),
//           5 out (write).
// Workgroup: one per row (2-D grid of rows, see grid1d), 1024 threads: R is small (tens of rows), so
//   each workgroup must keep many loads in flight on its own. Each thread runs an online
//   max/sum-of-exp over a strided slice of the row (4 independent coalesced loads per step), then the
//   (max, sum) pairs are combined by a tree in workgroup memory (8 KiB). V up to 152064 (Qwen).
// Backward (crossentropy_backward) needs lse, logits and targets.

struct Params { R: u32, V: u32, mode: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 1024u;
const NEG_BIG: f32 = -3.0e38; // below any finite logit we expect; exp(NEG_BIG - m) == 0

var<workgroup> smax: array<f32, WG>;
var<workgroup> ssum: array<f32, WG>;
var<workgroup> rowLse: f32;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let r = wid.x + wid.y * nwg.x; // uniform across the workgroup
  if (r >= p.R) {
    return;
  }
  let V = p.V;
  let base = r * V;

  // online (max, sum of exp(x - max)) over v = tid, tid + WG, ...
  var m = NEG_BIG;
  var s = 0.0;
  var v = tid;
  let STEP = 4u * WG;
  for (; v + 3u * WG < V; v += STEP) {
    let x0 = logits[base + v];
    let x1 = logits[base + v + WG];
    let x2 = logits[base + v + 2u * WG];
    let x3 = logits[base + v + 3u * WG];
    let mn = max(m, max(max(x0, x1), max(x2, x3)));
    s = s * exp(m - mn) + ((exp(x0 - mn) + exp(x1 - mn)) + (exp(x2 - mn) + exp(x3 - mn)));
    m = mn;
  }
  for (; v < V; v += WG) {
    let x = logits[base + v];
    let mn = max(m, x);
    s = s * exp(m - mn) + exp(x - mn);
    m = mn;
  }
  smax[tid] = m;
  ssum[tid] = s;
  workgroupBarrier();

  // tree: combine (m1, s1) and (m2, s2) into (max, s1 e^(m1-max) + s2 e^(m2-max))
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (tid < stride) {
      let m1 = smax[tid];
      let m2 = smax[tid + stride];
      let mn = max(m1, m2);
      ssum[tid] = ssum[tid] * exp(m1 - mn) + ssum[tid + stride] * exp(m2 - mn);
      smax[tid] = mn;
    }
    workgroupBarrier();
  }

  if (tid == 0u) {
    let l = smax[0] + log(ssum[0]);
    rowLse = l;
    lse[r] = l;
    let t = min(targets[r], V - 1u);
    loss[r] = l - logits[base + t];
  }
  if (p.mode == 0u) {
    return;
  }
  workgroupBarrier();
  let l = rowLse;
  if (p.mode == 1u) {
    for (var u = tid; u < V; u += WG) {
      out[base + u] = exp(logits[base + u] - l);
    }
  } else {
    for (var u = tid; u < V; u += WG) {
      out[base + u] = logits[base + u] - l;
    }
  }
}
