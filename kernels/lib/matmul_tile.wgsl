// The 128x128 output tile shared by the matmul kernels: geometry, double-buffered shared tiles, the
// register-blocked 8x8 FMA micro-kernel and the epilogue's walk over a thread's rows.
// Layout (each includer's header says which matrices it puts where):
//   256 threads own a 128x128 tile of the output; thread (tx, ty) = (lid % 16, lid / 16) owns 8x8
//   outputs, rows {4ty..4ty+3, 64+4ty..64+4ty+3} x cols {4tx..4tx+3, 64+4tx..64+4tx+3}, so that its
//   shared-memory reads are vec4s and a warp's B reads cover 256 contiguous bytes.
//   acc[2i + h]: output row i of the thread (0..3: 4ty+i, 4..7: 64+4ty+i-4), column chunk h.
//   The reduction dimension is walked in steps of BK = 8 through As, Bs [buffer * BK + step row][tile
//   column / 4]: rows of 128 floats padded to 132 (33 vec4) so that transposing stores hit 32 distinct
//   banks; two buffers, so the next step's global loads can be issued before the current step's
//   512 FMAs with one barrier per step. 16.5 KiB of workgroup memory.
// No bindings. Included by matmul_forward, matmul_backward_input, matmul_backward_weight,
// matmul_quant_forward, matmul_quant_backward_input.
// The micro-kernel and the accumulator moves are functions taking ptr<function> to the caller's
// accumulator (core WGSL); every index into it is a constant, so once inlined (Mesa, lavapipe
// included, inlines every call; GPU shader compilers inline small functions like these) acc stays
// in registers.
// Left in each kernel on purpose: the double-buffered step loop itself (loads of step s, tileFma of
// step s - 1, stores, barrier), because its global loads differ per kernel and WGSL cannot pass code
// into a shared loop (no closures, no macros, and no ptr<storage>/ptr<workgroup> parameters without
// the unrestricted_pointer_parameters feature, which we do not rely on); the load roles; and the
// epilogue's store, which writes a different buffer in each kernel.

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
const ROW4: u32 = 33u; // vec4s per shared row: 128 floats + 4 of padding

var<workgroup> As: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + k][tile row / 4]
var<workgroup> Bs: array<array<vec4<f32>, ROW4>, 16>; // [buffer * BK + k][tile column / 4]

// acc += the outer products of the BK shared rows cur .. cur + BK - 1 of As and Bs
fn tileFma(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, tx: u32, ty: u32) {
  for (var kk = 0u; kk < BK; kk++) {
    let r = cur + kk;
    let a0 = As[r][ty];
    let a1 = As[r][ty + 16u];
    let b0 = Bs[r][tx];
    let b1 = Bs[r][tx + 16u];
    (*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a0.x), b1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a0.y), b1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(a0.z), b1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(a0.w), b1, (*acc)[7]);
    (*acc)[8] = fma(vec4<f32>(a1.x), b0, (*acc)[8]);
    (*acc)[9] = fma(vec4<f32>(a1.x), b1, (*acc)[9]);
    (*acc)[10] = fma(vec4<f32>(a1.y), b0, (*acc)[10]);
    (*acc)[11] = fma(vec4<f32>(a1.y), b1, (*acc)[11]);
    (*acc)[12] = fma(vec4<f32>(a1.z), b0, (*acc)[12]);
    (*acc)[13] = fma(vec4<f32>(a1.z), b1, (*acc)[13]);
    (*acc)[14] = fma(vec4<f32>(a1.w), b0, (*acc)[14]);
    (*acc)[15] = fma(vec4<f32>(a1.w), b1, (*acc)[15]);
  }
}

// Stores of a thread's 4 loaded values into shared row r, float 4q + c of the tile:
//   ...Wide: v.x..v.w at tile columns 4q+c, +32, +64, +96 of row r (4 rows of a matrix, transposed)
//   ...Tall: v.x..v.w at tile column 4q+c of rows r, r+2, r+4, r+6 (4 rows of a matrix, as they are)
fn storeAWide(r: u32, q: u32, c: u32, v: vec4<f32>) {
  As[r][q][c] = v.x;
  As[r][q + 8u][c] = v.y;
  As[r][q + 16u][c] = v.z;
  As[r][q + 24u][c] = v.w;
}

fn storeBWide(r: u32, q: u32, c: u32, v: vec4<f32>) {
  Bs[r][q][c] = v.x;
  Bs[r][q + 8u][c] = v.y;
  Bs[r][q + 16u][c] = v.z;
  Bs[r][q + 24u][c] = v.w;
}

fn storeATall(r: u32, q: u32, c: u32, v: vec4<f32>) {
  As[r][q][c] = v.x;
  As[r + 2u][q][c] = v.y;
  As[r + 4u][q][c] = v.z;
  As[r + 6u][q][c] = v.w;
}

fn storeBTall(r: u32, q: u32, c: u32, v: vec4<f32>) {
  Bs[r][q][c] = v.x;
  Bs[r + 2u][q][c] = v.y;
  Bs[r + 4u][q][c] = v.z;
  Bs[r + 6u][q][c] = v.w;
}

// Epilogue step i (0..7) of a thread's output rows: moves the next row's accumulators into acc[0],
// acc[1] (constant indices only, so acc stays in registers whether or not the compiler unrolls the
// caller's loop; lavapipe compiles it once) and returns the distance to that row: rows 4ty .. 4ty+3,
// then 64+4ty .. 64+4ty+3.
fn nextRow(acc: ptr<function, array<vec4<f32>, 16>>, i: u32) -> u32 {
  (*acc)[0] = (*acc)[2]; (*acc)[1] = (*acc)[3]; (*acc)[2] = (*acc)[4]; (*acc)[3] = (*acc)[5];
  (*acc)[4] = (*acc)[6]; (*acc)[5] = (*acc)[7]; (*acc)[6] = (*acc)[8]; (*acc)[7] = (*acc)[9];
  (*acc)[8] = (*acc)[10]; (*acc)[9] = (*acc)[11]; (*acc)[10] = (*acc)[12]; (*acc)[11] = (*acc)[13];
  (*acc)[12] = (*acc)[14]; (*acc)[13] = (*acc)[15];
  return select(1u, 61u, i == 3u);
}
