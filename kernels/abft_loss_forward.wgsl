// abft_loss_forward: the ABFT attention loss of one layer (../shared/docs/abft-method.md section 3).
// For prompt b and head h, α = att[b, h, :] is the last token's attention row (zero past the prompt's
// n_t tokens); the prompt's K label positions are labelPos[b, :], correct[b, k] = 1 marks the
// label positions carrying the query's label (I+), 0 the others (I−).
//   S[b, h]    = Σ_k α[labelPos[b, k]]
//   mask[b, h] = 1 if useFilter == 0 or S[b, h] > threshold[b] (an induction head), else 0
//   loss[b, h] = mask · (coefA · Σ_{k ∈ I−} α[labelPos[b, k]] + coefB · Σ_{k ∈ I+} (1 − α[labelPos[b, k]]))
// threshold[b] = k / (k + ln n_t) is per prompt because n_t is. A label position ≥ T reads as α = 0.
// Shapes: att f32 [B, NH, T]; labelPos, correct u32 [B, K]; threshold f32 [B];
//   loss, mask, S f32 [B, NH].
// Bindings: 0 Params {B, NH, T, K, useFilter, coefA, coefB}, 1 att (read), 2 labelPos (read),
//           3 correct (read), 4 threshold (read), 5 loss (write), 6 mask (write), 7 S (write).
// Workgroup: 64 threads, one (b, h) pair each (K is a handful); 2-D grid (see grid1d).
// Backward (abft_loss_backward) needs mask, labelPos and correct.

struct Params { B: u32, NH: u32, T: u32, K: u32, useFilter: u32, coefA: f32, coefB: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> att: array<f32>;
@group(0) @binding(2) var<storage, read> labelPos: array<u32>;
@group(0) @binding(3) var<storage, read> correct: array<u32>;
@group(0) @binding(4) var<storage, read> threshold: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> mask: array<f32>;
@group(0) @binding(7) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let bh = gid.x + gid.y * nwg.x * 64u;
  if (bh >= p.B * p.NH) {
    return;
  }
  let b = bh / p.NH;
  var sum = 0.0;
  var wrong = 0.0; // Σ_{I−} α
  var right = 0.0; // Σ_{I+} (1 − α)
  for (var k = 0u; k < p.K; k++) {
    let t = labelPos[b * p.K + k];
    var a = 0.0;
    if (t < p.T) {
      a = att[bh * p.T + t];
    }
    sum += a;
    if (correct[b * p.K + k] != 0u) {
      right += 1.0 - a;
    } else {
      wrong += a;
    }
  }
  var on = 1.0;
  if (p.useFilter != 0u && !(sum > threshold[b])) {
    on = 0.0;
  }
  S[bh] = sum;
  mask[bh] = on;
  loss[bh] = on * (p.coefA * wrong + p.coefB * right);
}
