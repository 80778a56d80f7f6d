// gelu_forward: GPT-2's gelu_new (tanh approximation), elementwise over N floats.
//   out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
// computed as x * sigmoid(2u) = x / (1 + exp(-2u)), u = sqrt(2/pi) * x * (1 + 0.044715 * x^2),
// which equals the tanh form, keeps its relative accuracy where 1 + tanh(u) is tiny (x << 0), and
// never evaluates tanh or cosh of a large argument (NaN or inf on some drivers). u is clamped to
// +-40 so exp stays finite: beyond that the result differs from the exact one by < |x| * 2e-35.
// Shapes: inp, out (N) with N = B*T*4C (or any count). out must not be the same buffer as inp.
// Bindings: 0 Params {N}, 1 inp (read), 2 out (write).
// Workgroup: 256 threads, one element each; 2-D grid, i = gid.x + gid.y * nwg.x * 256.
// Backward needs inp (kernels/gelu_backward.wgsl recomputes everything from it).

struct Params { N: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

//!include lib/gelu.wgsl

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    let x = inp[i];
    let u = clamp(gelu_u(x), -40.0, 40.0);
    out[i] = x / (1.0 + exp(-2.0 * u));
  }
}
