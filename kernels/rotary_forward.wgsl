// rotary_forward: rotary position embedding (HF Llama convention, rotate_half) of q or k.
// For each token (b, t) at position pos = positions[b*T + t], each head h and each i < HS/2:
//   a = f32(pos) * invFreq[i]                       (an f32 product, as HF computes its freqs)
//   out[i]        = x[i] cos(a) - x[i + HS/2] sin(a)
//   out[i + HS/2] = x[i + HS/2] cos(a) + x[i] sin(a)
// Shapes: inp, out [B,T,NH,HS] (NH = the heads of this tensor: NH for q, NKV for k), positions [B,T]
// u32 (callers wanting pos = t upload 0..T-1 per sequence), invFreq [HS/2] (src/ref/rotary.ts).
// cos and sin are computed here (not by the driver: Vulkan allows 2^-11 absolute error for them)
// with an exact three-part reduction by pi/2 and Taylor polynomials: about 1e-7 absolute error for
// |a| < 1e5; larger angles slowly lose accuracy (their own f32 spacing is then already >= 0.008).
// (lib/rotary.wgsl, shared with rotary_backward.)
// Bindings: 0 Params {N, NH, HS} (N = B*T*NH*HS/2 rotated pairs), 1 inp (read), 2 positions (read),
//   3 invFreq (read), 4 out (write; must not alias inp).
// Workgroup: 256 threads, one pair (i, i + HS/2) each; 2-D grid (see src/ops/grid.ts).
// Backward needs: positions and invFreq only (rotary_backward.wgsl rotates by -a).

struct Params { N: u32, NH: u32, HS: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//!include lib/rotary.wgsl

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.N) {
    return;
  }
  let pr = rotaryPair(idx);
  let sc = pr.sc;
  let x1 = inp[pr.o];
  let x2 = inp[pr.o + pr.half];
  out[pr.o] = x1 * sc.y - x2 * sc.x;
  out[pr.o + pr.half] = x2 * sc.y + x1 * sc.x;
}
