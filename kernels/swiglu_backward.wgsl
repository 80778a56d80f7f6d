// swiglu_backward: gradients of kernels/swiglu_forward.wgsl (out = silu(gate) * up).
// With s = sigmoid(g) = 1 / (1 + e), e = exp(-g), 1 - s = e * s:
//   dup   = dout * g * s
//   dgate = dout * up * s * (1 + g * (1 - s))        (silu'(g))
// g is clamped to +-80 inside exp, so neither term overflows (no NaN for large |g|).
// Shapes: gate, up, dout, dgate, dup (N). dgate and dup must be distinct buffers, neither aliasing an input.
// Bindings: 0 Params {N, accumulate}, 1 gate (read), 2 up (read), 3 dout (read),
//           4 dgate (read_write), 5 dup (read_write).
// Gradient convention: dgate and dup are written (=) when accumulate = 0, added to (+=) when 1.
// Workgroup: 256 threads, one element each; 2-D grid, i = gid.x + gid.y * nwg.x * 256.

struct Params { N: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    let g = gate[i];
    let d = dout[i];
    let e = exp(-clamp(g, -80.0, 80.0));
    let s = 1.0 / (1.0 + e);
    let dg = d * up[i] * s * (1.0 + g * (e * s));
    let du = d * g * s;
    if (p.accumulate != 0u) {
      dgate[i] += dg;
      dup[i] += du;
    } else {
      dgate[i] = dg;
      dup[i] = du;
    }
  }
}
