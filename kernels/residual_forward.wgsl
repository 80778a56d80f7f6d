// residual_forward: out = a + b, elementwise over N floats.
// Used by the residual stream of every model and by the doctor's self-check.
// Bindings: 0 Params {N}, 1 a (read), 2 b (read), 3 out (write). Workgroup: 256 threads, 1 element each;
// the grid is 2-D (x up to 65535 workgroups) so that N may exceed 16.7M.

struct Params { N: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    out[i] = a[i] + b[i];
  }
}
