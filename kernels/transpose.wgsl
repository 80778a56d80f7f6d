// transpose: out [ncols, rows] = src[:, col0 : col0 + ncols]ᵀ for a 2-D src [rows, cols] in f32, bf16
// or f16; out in f32 (16-bit values widened exactly) or in src's own 16-bit dtype (bits copied).
// Used at load time: GPT-2's Conv1D weights are stored [in, out] and kept as nn.Linear [out, in],
// and its fused c_attn [C, 3C] is cut into W_Q, W_K, W_V by column windows (models/common.ts).
// 16-bit storage packs two values per u32 word, element 2j in the low half (lib/dtype.wgsl); the
// flat element index of src is r·cols + c, of out j·rows + r, so with odd sizes a word may hold the
// end of one row and the start of the next. The last word's high half is 0 when the count is odd.
// f16 is decoded with integer ops (exact, subnormals included), as the host's f16ToF32.
//
// Bindings: 0 Params {rows, cols, col0, ncols, srcDtype (0 f32, 1 bf16, 2 f16), outF32 (1: f32 out,
//   0: out in srcDtype, which must then be 16-bit)}, 1 src (read, u32 words), 2 out (write, u32 words).
// Entry points:
//   main   tiled transpose. Workgroup (256 threads) = an out tile of TJ = 32 rows (src columns) by
//          TR = 64 columns (src rows); grid [ceil(rows / 64), ceil(ncols / 32)]. The tile goes
//          through workgroup memory (32 × 65 words, padded against bank conflicts): src is read
//          along its rows and out written along its rows, both coalesced. 16-bit out: each thread
//          writes whole words; a word belongs to the tile that holds its low element, and a high
//          element outside the tile (next tile, or the first element of the next out row when rows
//          is odd) is read from src directly.
//   widen  out[i] = f32(src element i) for i < ncols (no transpose: rows, cols, col0 unused);
//          256 threads, one element each, 2-D grid (grid1d).
// No backward: weights are frozen or trained after this copy.

struct Params { rows: u32, cols: u32, col0: u32, ncols: u32, srcDtype: u32, outF32: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const TR: u32 = 64u; // out columns per tile (src rows)
const TJ: u32 = 32u; // out rows per tile (src columns)
const STRIDE: u32 = 65u; // TR + 1
var<workgroup> tile: array<u32, 2080>; // [TJ][STRIDE]: raw bits of src elements

// the raw bits of src element e: an f32 word, or 16 bits
fn srcBits(e: u32) -> u32 {
  if (p.srcDtype == 0u) {
    return src[e];
  }
  return (src[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
}

// IEEE half bits → f32, exactly (as src/io/safetensors.ts f16ToF32)
fn halfToF32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let ex = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (ex == 0u) {
    // zero or subnormal: mant · 2^-24, an exact product and a normal f32
    return bitcast<f32>(bitcast<u32>(f32(mant) * 5.9604644775390625e-8) | sign);
  }
  if (ex == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mant << 13u)); // inf, nan
  }
  return bitcast<f32>(sign | ((ex + 112u) << 23u) | (mant << 13u));
}

// raw bits of a src element → f32 bits
fn widenBits(b: u32) -> u32 {
  if (p.srcDtype == 0u) {
    return b;
  }
  if (p.srcDtype == 1u) {
    return b << 16u;
  }
  return bitcast<u32>(halfToF32(b));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = wg.x * TR;
  let j0 = wg.y * TJ;
  // load src rows [r0, r0 + 64) × columns col0 + [j0, j0 + 32): 32 consecutive columns per pass
  for (var i = 0u; i < 8u; i++) {
    let jl = lid % TJ;
    let rl = lid / TJ + i * 8u;
    let r = r0 + rl;
    let j = j0 + jl;
    var v = 0u;
    if (r < p.rows && j < p.ncols) {
      v = srcBits(r * p.cols + p.col0 + j);
    }
    tile[jl * STRIDE + rl] = v;
  }
  workgroupBarrier();
  if (p.outF32 == 1u) {
    // 64 consecutive out columns per pass, 4 out rows per pass
    for (var i = 0u; i < 8u; i++) {
      let rl = lid % TR;
      let jl = lid / TR + i * 4u;
      let r = r0 + rl;
      let j = j0 + jl;
      if (r < p.rows && j < p.ncols) {
        out[j * p.rows + r] = widenBits(tile[jl * STRIDE + rl]);
      }
    }
    return;
  }
  // 16-bit out: 32 words per out row (the even flat elements of the tile's 64), 8 out rows per pass
  let rowEnd = min(r0 + TR, p.rows);
  for (var i = 0u; i < 4u; i++) {
    let wl = lid % 32u;
    let jl = lid / 32u + i * 8u;
    let j = j0 + jl;
    let base = j * p.rows; // flat index of out row j's first element
    let r = r0 + ((base + r0) & 1u) + 2u * wl; // this thread's even flat element (j, r)
    if (j < p.ncols && r < rowEnd) {
      let lo = tile[jl * STRIDE + (r - r0)];
      var hi = 0u;
      if (r + 1u < rowEnd) {
        hi = tile[jl * STRIDE + (r + 1u - r0)];
      } else if (r + 1u < p.rows) {
        hi = srcBits((r + 1u) * p.cols + p.col0 + j); // first row of the next tile
      } else if (j + 1u < p.ncols) {
        hi = srcBits(p.col0 + j + 1u); // out row j + 1, element 0: src (0, col0 + j + 1)
      }
      out[(base + r) >> 1u] = lo | (hi << 16u);
    }
  }
}

@compute @workgroup_size(256)
fn widen(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.ncols) {
    out[i] = widenBits(srcBits(i));
  }
}
