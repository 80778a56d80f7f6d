// gelu_backward: dinp = dout * gelu'(inp) for GPT-2's gelu_new (kernels/gelu_forward.wgsl).
// With u = sqrt(2/pi) * x * (1 + 0.044715 x^2), s = 0.5 * (1 + tanh u) = sigmoid(2u) = 1 / (1 + e),
// e = exp(-2u), 1 - s = e * s:
//   gelu'(x) = s + x * 2 s (1 - s) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2)
// (0.5 * (1 - tanh^2 u) = 2 s (1 - s)). u is clamped to +-40 so exp stays finite; where |u| > 40 the
// second term (< |x|^3 * 1e-34) is dropped so that huge |x| gives 0 or 1, never inf or NaN.
// Shapes: inp, dout, dinp (N). dinp must not be the same buffer as inp or dout.
// Bindings: 0 Params {N, accumulate}, 1 inp (read), 2 dout (read), 3 dinp (read_write).
// Gradient convention: dinp is written (=) when accumulate = 0 and added to (+=) when accumulate = 1.
// Workgroup: 256 threads, one element each; 2-D grid, i = gid.x + gid.y * nwg.x * 256.

struct Params { N: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;

//!include lib/gelu.wgsl

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.N) {
    let x = inp[i];
    let x2 = x * x;
    let t = gelu_u(x);
    let e = exp(-2.0 * clamp(t, -40.0, 40.0));
    let s = 1.0 / (1.0 + e);
    let slope = 2.0 * s * (e * s) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_A * x2);
    let d = s + select(x * slope, 0.0, abs(t) > 40.0);
    let g = dout[i] * d;
    if (p.accumulate != 0u) {
      dinp[i] += g;
    } else {
      dinp[i] = g;
    }
  }
}
