// swiglu_forward: the gated activation of the Llama / Qwen2 MLP, elementwise over N floats.
//   out = silu(gate) * up,   silu(g) = g * sigmoid(g) = g / (1 + exp(-g))
// gate and up are two separate buffers (the outputs of the gate_proj and up_proj matmuls).
// g is clamped to +-80 inside exp so it stays finite: sigmoid is then exact to f32 for g > 80, and
// for g < -80 the result differs from the exact one by < |g * up| * 2e-35.
// Shapes: gate, up, out (N) with N = B*T*F (F = intermediate size). out must not alias gate or up.
// Bindings: 0 Params {N}, 1 gate (read), 2 up (read), 3 out (write).
// Workgroup: 256 threads, one element each; 2-D grid, i = gid.x + gid.y * nwg.x * 256.
// Backward needs gate and up.

struct Params { N: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    let g = gate[i];
    out[i] = g / (1.0 + exp(-clamp(g, -80.0, 80.0))) * up[i];
  }
}
