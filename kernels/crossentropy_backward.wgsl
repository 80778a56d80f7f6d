// crossentropy_backward: gradient of loss[r] = lse[r] − logits[r, target[r]] with respect to logits.
//   dlogits[r, v] = dloss[r] · (exp(logits[r, v] − lse[r]) − [v == target[r]])      (written, =)
// Shapes: logits f32 [R, V], targets u32 [R] (clamped to V−1 as in the forward), lse f32 [R] (saved
//   by crossentropy_forward), dloss f32 [R], dlogits f32 [R, V].
// Bindings: 0 Params {R, V}, 1 logits (read), 2 targets (read), 3 lse (read), 4 dloss (read),
//           5 dlogits (write).
// Workgroup: 256 threads, one element each over the flattened [R, V]; 2-D grid (see grid1d).

struct Params { R: u32, V: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dloss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.R * p.V) {
    return;
  }
  let r = i / p.V;
  let v = i - r * p.V;
  var g = exp(logits[i] - lse[r]);
  if (v == min(targets[r], p.V - 1u)) {
    g -= 1.0;
  }
  dlogits[i] = dloss[r] * g;
}
