// adam_update: one PyTorch Adam step (no weight decay, no amsgrad) over N parameters, in place.
//   g = grad · gradScale                      (gradScale: e.g. 1/pseudo-batch, the mean of summed grads)
//   m = β1·m + (1 − β1)·g
//   v = β2·v + (1 − β2)·g²
//   param −= (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)       bc1 = 1 − β1^t, bc2 = 1 − β2^t
// The same arithmetic as torch.optim.Adam's single-tensor path. bc1, bc2, 1 − β1 and 1 − β2 are
// computed on the host in float64 and passed as f32 (1 − 0.999f in f32 is off by 1.3e-5 relative).
// grad is only read: the caller zeroes it for the next step.
// Shapes: param, grad, m, v f32 [N].
// Bindings: 0 Params {N, lr, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, bc1, bc2, gradScale},
//           1 param (read/write), 2 grad (read), 3 m (read/write), 4 v (read/write).
// Workgroup: 256 threads, one element each; 2-D grid (see grid1d) for N beyond 16.7M.

struct Params {
  N: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  oneMinusBeta1: f32,
  oneMinusBeta2: f32,
  eps: f32,
  bc1: f32,
  bc2: f32,
  gradScale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.N) {
    return;
  }
  let g = grad[i] * p.gradScale;
  let mi = p.beta1 * m[i] + p.oneMinusBeta1 * g;
  let vi = p.beta2 * v[i] + p.oneMinusBeta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(p.bc2) + p.eps;
  param[i] = param[i] - (p.lr / p.bc1) * mi / denom;
}
