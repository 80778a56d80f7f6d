// quantize_int8: a weight of n values (f32, bf16 or f16) → int8 codes + an f32 scale per block of 32.
// The format is defined in src/ops/quant.ts; the bit-exact host reference is src/ref/quant.ts.
//   scale d = absmax · f32(1/127) (f32 product);  q = sign(x) · #{j < 127 : |x| > (j + 1/2) · d}
//   (round to nearest with f32 products as thresholds, ties toward zero; a first guess from |x| / d,
//   then corrected by those comparisons, so WGSL's inexact division never decides a code).
// Codes are two's-complement bytes, element 4j in the low byte of word j; scales at out[scaleOff + b].
// Values past n (the padded last block) are 0.
// Shapes: src [n] (dtype 0 f32, 1 bf16, 2 f16: two per word, element 2j in the low half); out u32
//   [quantLayout(n, "int8").words].
// Bindings: 0 Params {n, dtype, scaleOff}, 1 src (read, u32), 2 out (read_write, u32).
// Workgroup: 256 threads = 32 blocks of 32 values; a thread owns 4 consecutive values (one code word),
//   8 threads per block combine their maxima in workgroup memory. 2-D grid for > 65535 workgroups.
// Shared code: lib/quantize.wgsl (source reads, block absmax, rounding to a grid).

struct Params { n: u32, dtype: u32, scaleOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const INV127: u32 = 0x3c010204u; // f32(1/127)

//!include lib/quantize.wgsl

fn int8Code(x: f32, d: f32, inv: f32) -> u32 {
  let a = abs(x);
  let q = roundToGrid(a, d, a * inv, 127u);
  let s = select(i32(q), -i32(q), x < 0.0);
  return bitcast<u32>(s) & 0xffu;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * 256u + lid; // code word: values 4w .. 4w+3, block w / 8
  let v = vec4<f32>(srcAt(4u * w), srcAt(4u * w + 1u), srcAt(4u * w + 2u), srcAt(4u * w + 3u));
  let a = abs(v);
  let A = blockAbsmax(max(max(a.x, a.y), max(a.z, a.w)), lid);
  if (4u * w >= p.n) {
    return; // after the only barrier
  }
  let d = A * bitcast<f32>(INV127);
  var inv = 0.0;
  if (d > 0.0) {
    inv = 1.0 / d;
  }
  out[w] = int8Code(v.x, d, inv) | (int8Code(v.y, d, inv) << 8u) | (int8Code(v.z, d, inv) << 16u) | (int8Code(v.w, d, inv) << 24u);
  if ((lid & 7u) == 0u) {
    out[p.scaleOff + (w >> 3u)] = bitcast<u32>(d);
  }
}
