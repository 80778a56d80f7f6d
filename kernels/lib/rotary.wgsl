// Rotary embedding angles, shared by rotary_forward and rotary_backward so that the two rotations
// match exactly. cos and sin are computed here, not by the driver (Vulkan allows 2^-11 absolute
// error for them), with an exact three-part reduction by pi/2 and Taylor polynomials: about 1e-7
// absolute error for |a| < 1e5; larger angles slowly lose accuracy (their own f32 spacing is then
// already >= 0.008).
// The includer declares `positions: array<u32>`, `invFreq: array<f32>` (read) and Params `p` with
// u32 fields NH and HS. Included by rotary_forward and rotary_backward.

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

// Rotated pair number idx (< N = B*T*NH*HS/2): elements o and o + half of the [B,T,NH,HS] tensor,
// rotated by a = f32(positions[b*T + t]) * invFreq[i] (an f32 product, as HF computes its freqs).
struct RotaryPair {
  o: u32,          // element (b, t, h, i), i < HS/2
  half: u32,       // HS/2: the partner element is o + half
  sc: vec2<f32>,   // (sin a, cos a)
}

fn rotaryPair(idx: u32) -> RotaryPair {
  let half = p.HS / 2u;
  let i = idx % half;
  let row = idx / half;                 // (b*T + t)*NH + h
  let sc = sinCos(f32(positions[row / p.NH]) * invFreq[i]);
  return RotaryPair(row * p.HS + i, half, sc);
}
