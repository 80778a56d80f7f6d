// The 32x128 output tile shared by the LM head kernels: geometry, double-buffered shared tiles and
// the register-blocked 4x4 FMA micro-kernel.
// Layout: 256 threads own a 32x128 tile; thread (tx, ty) = (lid % 32, lid / 32) owns tile rows
//   4ty..4ty+3 x columns 4tx..4tx+3, acc[i] holding row 4ty + i. The reduction dimension is walked in
//   steps of BK = 16 through As [buffer * BK + k][tile row / 4] (32 floats + 4 of padding) and
//   Bs [buffer * BK + k][tile column / 4] (128 floats + 4 of padding). 21 KiB of workgroup memory.
// No bindings. Included by lm_head_forward and lm_head_backward.
// The functions take ptr<function> to the caller's accumulator (core WGSL); every index into it is a
// constant, so once inlined (Mesa, lavapipe included, inlines every call; GPU shader compilers inline
// small functions like these) it stays in registers.

const BR: u32 = 32u;
const BK: u32 = 16u;

var<workgroup> As: array<array<vec4<f32>, 9>, 32>;  // [buffer * BK + k][r / 4]: 32 floats + 4 of padding
var<workgroup> Bs: array<array<vec4<f32>, 33>, 32>; // [buffer * BK + k][col / 4]: 128 floats + 4 of padding

// acc += the outer products of the BK shared rows cur .. cur + BK - 1 of As and Bs
fn lmTileFma(acc: ptr<function, array<vec4<f32>, 4>>, cur: u32, tx: u32, ty: u32) {
  for (var kk = 0u; kk < BK; kk++) {
    let a = As[cur + kk][ty];
    let b = Bs[cur + kk][tx];
    (*acc)[0] = fma(vec4<f32>(a.x), b, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a.y), b, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a.z), b, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a.w), b, (*acc)[3]);
  }
}

// moves the next row's accumulator into acc[0] (constant indices: a loop body lavapipe compiles once)
fn lmNextRow(acc: ptr<function, array<vec4<f32>, 4>>) {
  (*acc)[0] = (*acc)[1];
  (*acc)[1] = (*acc)[2];
  (*acc)[2] = (*acc)[3];
}
