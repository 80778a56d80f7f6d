// Dequantization of a frozen quantized weight W [N, K] held in one u32 buffer (layout in
// src/ops/quant.ts; bit-exact host reference src/ref/quant.ts), done in registers while a matmul
// loads its weight tile. Formats (Params.format):
//   0 nf4:   codes at word e/8, nibble (byte (e/2)%4, even element high); absmax f32 at scaleOff + e/64;
//            W = NF4[q] · absmax
//   1 nf4dq: as nf4, absmax = fma(q8, step, lo) with q8 byte (b%4) of word scaleOff + b/4 (b = e/64)
//            and (lo, step) f32 at groupOff + 2·(b/256)
//   2 int8:  code byte e%4 of word e/4 (two's complement); scale f32 at scaleOff + e/32; W = q · scale
// Element index e = n·K + k over the flat weight, so any K works; when K % 4 == 0 the 4 values that
// weight4 reads share one word (and one block) and are decoded together (a uniform branch).
// The NF4 code book lives in workgroup memory (lut, 16 floats in 16 banks: lookups never conflict):
// call loadNf4Lut(lid) first and put a workgroupBarrier() before the first weight4.
// The includer declares `weight: array<u32>` and Params `p` with u32 fields N, K, format, scaleOff,
// groupOff. Included by matmul_quant_forward and matmul_quant_backward_input.

// bitsandbytes' NF4 code book as exact f32 bits (src/ref/quant.ts NF4_CODE)
const NF4 = array<u32, 16>(
  0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
  0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u);

var<workgroup> lut: array<f32, 16>;

// threads 0..15 copy the code book into lut (the caller then waits at a barrier)
fn loadNf4Lut(lid: u32) {
  if (lid < 16u) {
    lut[lid] = bitcast<f32>(NF4[lid]);
  }
}

// absmax of NF4 block b
fn blockScale(b: u32) -> f32 {
  if (p.format == 1u) {
    let q = (weight[p.scaleOff + (b >> 2u)] >> ((b & 3u) * 8u)) & 0xffu;
    let g = p.groupOff + 2u * (b >> 8u);
    return fma(f32(q), bitcast<f32>(weight[g + 1u]), bitcast<f32>(weight[g]));
  }
  return bitcast<f32>(weight[p.scaleOff + b]);
}

// the value of element e
fn dequant1(e: u32) -> f32 {
  if (p.format == 2u) {
    let q = bitcast<i32>(weight[e >> 2u] << (24u - (e & 3u) * 8u)) >> 24u;
    return f32(q) * bitcast<f32>(weight[p.scaleOff + (e >> 5u)]);
  }
  let shift = (e & 6u) * 4u + (1u - (e & 1u)) * 4u;
  return lut[(weight[e >> 3u] >> shift) & 15u] * blockScale(e >> 6u);
}

// the values of elements e .. e+3, e % 4 == 0 (one word, one block)
fn dequant4(e: u32) -> vec4<f32> {
  if (p.format == 2u) {
    let w = weight[e >> 2u];
    let q = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u);
    return vec4<f32>(q) * bitcast<f32>(weight[p.scaleOff + (e >> 5u)]);
  }
  let bits = weight[e >> 3u] >> ((e & 4u) * 4u); // bytes (e/2)%4 and the next: elements e, e+1 | e+2, e+3
  let s = blockScale(e >> 6u);
  return vec4<f32>(lut[(bits >> 4u) & 15u], lut[bits & 15u], lut[(bits >> 12u) & 15u], lut[(bits >> 8u) & 15u]) * s;
}

// W[n, k .. k+3] with zeros outside the matrix
fn weight4(n: u32, k: u32) -> vec4<f32> {
  if (n >= p.N || k >= p.K) {
    return vec4<f32>(0.0);
  }
  let e = n * p.K + k;
  if ((p.K & 3u) == 0u) {
    return dequant4(e);
  }
  var v = vec4<f32>(dequant1(e), 0.0, 0.0, 0.0);
  if (k + 1u < p.K) { v.y = dequant1(e + 1u); }
  if (k + 2u < p.K) { v.z = dequant1(e + 2u); }
  if (k + 3u < p.K) { v.w = dequant1(e + 3u); }
  return v;
}
