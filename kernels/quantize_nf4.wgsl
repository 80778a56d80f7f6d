// quantize_nf4: a weight of n values (f32, bf16 or f16) → NF4 codes + block absmax, optionally with
// the absmax double-quantized to 8 bits (nf4dq). The format is defined in src/ops/quant.ts; the
// bit-exact host reference is src/ref/quant.ts quantizeRef.
//   entry main:          codes of 8 consecutive values per thread (one u32 word), absmax per block of
//                        64 (f32 at out[scaleOff + block], or into scratch when dq = 1)
//   entry double_quant:  (dq = 1, after main) per group of 256 blocks: lo = min, step = f32((max − lo)
//                        · f32(1/255)), 8-bit codes packed 4 per word at out[scaleOff ..], (lo, step)
//                        at out[groupOff + 2g], out[groupOff + 2g + 1]
// NF4 code of x in a block with absmax A: q = #{i : x > MID[i] · A} (f32 products; ties to the lower
// code), packed two per byte with the even element in the high nibble, bytes little-endian.
// Values past n (the padded last block and last word) are 0.
// Shapes: src [n] (dtype 0 f32, 1 bf16, 2 f16: two per word, element 2j in the low half); out u32
//   [quantLayout(n).words]; scratch f32 [blocks] (dq only).
// Bindings: 0 Params {n, dtype, dq, blocks, scaleOff, scaleWords, groupOff}, 1 src (read, u32),
//   2 out (read_write, u32), 3 scratch (read_write, f32; a placeholder when dq = 0).
// Workgroup: main: 256 threads = 32 blocks of 64 values, 8 threads per block (each its own 8 values:
//   a warp reads 1 KiB contiguous); the block absmax is the max of the 8 partial maxima in workgroup
//   memory (max is exact in any order). double_quant: 256 threads = one group, one absmax each.
//   2-D grids (i = wg.x + wg.y · nwg.x) for more than 65535 workgroups.
// Shared code: lib/quantize.wgsl (source reads, block absmax, rounding to a grid).

struct Params { n: u32, dtype: u32, dq: u32, blocks: u32, scaleOff: u32, scaleWords: u32, groupOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;

// midpoints of adjacent NF4 code values as exact f32 bits (src/ref/quant.ts NF4_MID)
const MID = array<u32, 15>(
  0xbf591cd8u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu, 0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu,
  0x3df64862u, 0x3e5067e0u, 0x3e9582d4u, 0x3ec753f9u, 0x3f006d04u, 0x3f248dafu, 0x3f5c89dau);
const INV255: u32 = 0x3b808081u; // f32(1/255)

var<workgroup> part2: array<f32, 256>; // double_quant's maxima (part, its minima, is in lib/quantize.wgsl)

//!include lib/quantize.wgsl

fn nf4Code(x: f32, A: f32) -> u32 {
  var q = 0u;
  for (var i = 0u; i < 15u; i++) {
    q += select(0u, 1u, x > bitcast<f32>(MID[i]) * A);
  }
  return q;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * 256u + lid; // code word: values 8w .. 8w+7, block w / 8
  var v: array<f32, 8>;
  var m = 0.0;
  for (var j = 0u; j < 8u; j++) {
    v[j] = srcAt(8u * w + j);
    m = max(m, abs(v[j]));
  }
  let A = blockAbsmax(m, lid);
  if (8u * w >= p.n) {
    return; // after the only barrier
  }
  var word = 0u;
  for (var j = 0u; j < 8u; j++) {
    // byte j/2 of the word; the even element of each byte in its high nibble
    word |= nf4Code(v[j], A) << ((j >> 1u) * 8u + (1u - (j & 1u)) * 4u);
  }
  out[w] = word;
  if ((lid & 7u) == 0u) {
    let blk = w >> 3u;
    if (p.dq == 0u) {
      out[p.scaleOff + blk] = bitcast<u32>(A);
    } else {
      scratch[blk] = A;
    }
  }
}

var<workgroup> codes: array<u32, 256>;

@compute @workgroup_size(256)
fn double_quant(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let g = wg.x + wg.y * nwg.x;
  let groups = (p.blocks + 255u) / 256u;
  let blk = g * 256u + lid;
  let valid = g < groups && blk < p.blocks;
  var a = 0.0;
  if (valid) {
    a = scratch[blk];
  }
  // min and max over the valid blocks of the group (padding takes a neutral value)
  part[lid] = select(3.0e38, a, valid);
  part2[lid] = select(-3.0e38, a, valid);
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) {
      part[lid] = min(part[lid], part[lid + s]);
      part2[lid] = max(part2[lid], part2[lid + s]);
    }
    workgroupBarrier();
  }
  let lo = part[0];
  let step = (part2[0] - lo) * bitcast<f32>(INV255);
  var q = 0u;
  if (valid) {
    let r = a - lo;
    if (step > 0.0) {
      // a first guess, then the exact count of thresholds (j + 1/2)·step below r
      q = roundToGrid(r, step, r / step, 255u);
    }
  }
  codes[lid] = q;
  workgroupBarrier();
  if (g >= groups) {
    return;
  }
  if (lid < 64u) {
    let wi = g * 64u + lid;
    if (wi < p.scaleWords) {
      out[p.scaleOff + wi] = codes[4u * lid] | (codes[4u * lid + 1u] << 8u) | (codes[4u * lid + 2u] << 16u) | (codes[4u * lid + 3u] << 24u);
    }
  }
  if (lid == 0u) {
    out[p.groupOff + 2u * g] = bitcast<u32>(lo);
    out[p.groupOff + 2u * g + 1u] = bitcast<u32>(step);
  }
}
