// axpy: scaled accumulate and scaled copy over N floats.
//   entry axpy:  y[i] = y[i] + a·x[i]      (e.g. accumulate a gradient, interpolate weights)
//   entry scale: y[i] = a·x[i]             (x and y may not be the same buffer: bind distinct ones)
// Shapes: x, y f32 [N].
// Bindings: 0 Params {N, a}, 1 x (read), 2 y (read/write).
// Workgroup: 256 threads, one element each; 2-D grid (see grid1d) for N beyond 16.7M.

struct Params { N: u32, a: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    y[i] = fma(p.a, x[i], y[i]);
  }
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    y[i] = p.a * x[i];
  }
}
