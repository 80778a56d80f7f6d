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

// (sin a, cos a). a - k pi/2 with pi/2 = P1 + P2 + P3, where P1 = 201/128 and P2 = 253/2^19 have 8
// significant bits each, so k P1 and k P2 are exact for |k| < 2^16 and both subtractions are exact;
// only k P3 (P3 = pi/2 - P1 - P2 = 1.26759079e-6) rounds. Then |r| <= pi/4 (+ slack) and the Taylor
// series to r^9 (sin) and r^10 (cos) truncate below 2e-9.
fn sinCos(a: f32) -> vec2<f32> {
  let kf = round(a * 0.63661977236758134);
  var r = a - kf * 1.5703125;
  r = r - kf * 4.825592041015625e-4;
  r = r - kf * 1.2675907949955e-6;
  let r2 = r * r;
  let sn = r + r * r2 * (-1.6666666666666667e-1 + r2 * (8.3333333333333333e-3 +
           r2 * (-1.9841269841269841e-4 + r2 * 2.7557319223985891e-6)));
  let cs = 1.0 + r2 * (-0.5 + r2 * (4.1666666666666667e-2 + r2 * (-1.3888888888888889e-3 +
           r2 * (2.4801587301587302e-5 - r2 * 2.7557319223985891e-7))));
  // a = k pi/2 + r: rotate (sin r, cos r) by the quadrant k mod 4
  switch (i32(kf) & 3) {
    case 0: { return vec2<f32>(sn, cs); }
    case 1: { return vec2<f32>(cs, -sn); }
    case 2: { return vec2<f32>(-sn, -cs); }
    default: { return vec2<f32>(-cs, sn); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.N) {
    return;
  }
  let half = p.HS / 2u;
  let i = idx % half;
  let row = idx / half;                 // (b*T + t)*NH + h
  let sc = sinCos(f32(positions[row / p.NH]) * invFreq[i]);
  let o = row * p.HS + i;
  let x1 = inp[o];
  let x2 = inp[o + half];
  out[o] = x1 * sc.y - x2 * sc.x;
  out[o + half] = x2 * sc.y + x1 * sc.x;
}
