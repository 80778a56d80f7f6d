// abft_loss_backward: gradient of scale · Σ_{b,h} loss[b, h] (abft_loss_forward) with respect to the
// last token's attention row, for the head mask found by the forward (held fixed):
//   datt[b, h, t] = scale · mask[b, h] · Σ_{k : labelPos[b, k] == t} (correct[b, k] ? −coefB : coefA)
// i.e. coefA on wrong label positions, −coefB on correct ones, 0 elsewhere and for non-induction
// heads (written, =: it is an activation gradient). scale is e.g. 1/pseudo-batch.
// Shapes: labelPos, correct u32 [B, K]; mask f32 [B, NH] (saved by the forward); datt f32 [B, NH, T].
// Bindings: 0 Params {B, NH, T, K, coefA, coefB, scale}, 1 labelPos (read), 2 correct (read),
//           3 mask (read), 4 datt (write).
// Workgroup: 256 threads, one element of datt each; 2-D grid (see grid1d).

struct Params { B: u32, NH: u32, T: u32, K: u32, coefA: f32, coefB: f32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> labelPos: array<u32>;
@group(0) @binding(2) var<storage, read> correct: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> datt: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.NH * p.T) {
    return;
  }
  let bh = i / p.T;
  let t = i - bh * p.T;
  let b = bh / p.NH;
  var g = 0.0;
  if (mask[bh] != 0.0) {
    for (var k = 0u; k < p.K; k++) {
      if (labelPos[b * p.K + k] == t) {
        if (correct[b * p.K + k] != 0u) {
          g -= p.coefB;
        } else {
          g += p.coefA;
        }
      }
    }
  }
  datt[i] = p.scale * g;
}
