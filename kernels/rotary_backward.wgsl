// rotary_backward: gradient of rotary_forward.wgsl, the inverse rotation (by -a):
//   dinp[i]        = dout[i] cos(a) + dout[i + HS/2] sin(a)
//   dinp[i + HS/2] = dout[i + HS/2] cos(a) - dout[i] sin(a),   a = f32(positions[b*T+t]) * invFreq[i]
// Shapes: dout, dinp [B,T,NH,HS]; positions [B,T] u32; invFreq [HS/2]. dinp is written (=).
// cos and sin as in rotary_forward.wgsl (the same code, lib/rotary.wgsl, so the two match exactly).
// Bindings: 0 Params {N, NH, HS} (N = B*T*NH*HS/2), 1 dout (read), 2 positions (read),
//   3 invFreq (read), 4 dinp (write; must not alias dout).
// Workgroup: 256 threads, one pair (i, i + HS/2) each; 2-D grid (see src/ops/grid.ts).

struct Params { N: u32, NH: u32, HS: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;
@group(0) @binding(4) var<storage, read_write> dinp: array<f32>;

//!include lib/rotary.wgsl

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.N) {
    return;
  }
  let pr = rotaryPair(idx);
  let sc = pr.sc;
  let g1 = dout[pr.o];
  let g2 = dout[pr.o + pr.half];
  dinp[pr.o] = g1 * sc.y + g2 * sc.x;
  dinp[pr.o + pr.half] = g2 * sc.y - g1 * sc.x;
}
