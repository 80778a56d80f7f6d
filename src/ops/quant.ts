// Quantized frozen weights: the storage formats, GPU quantization, and the matmuls that
// dequantize in registers.
//   quantize                   f32/bf16/f16 weight → nf4 / nf4dq / int8   kernels/quantize_nf4.wgsl, quantize_int8.wgsl
//   matmulQuantForward         out [M, N] = inp [M, K] · dequant(W)ᵀ (+ bias)   kernels/matmul_quant_forward.wgsl
//   matmulQuantBackwardInput   dinp [M, K] (= or +=) dout [M, N] · dequant(W)  kernels/matmul_quant_backward_input.wgsl
// A quantized weight never gets a gradient.
//
// Formats. A weight W [N, K] (nn.Linear layout) is quantized as one flat row-major sequence of
// n = N·K values (element e = n·K + k); blocks are runs of consecutive elements of that sequence,
// so a block spans two rows when K is not a multiple of the block size (bitsandbytes flattens the
// same way); the last block is padded with zeros. Everything lives in ONE buffer of u32 words:
//   nf4    [codes: ceil(n/8) words][absmax: blocks f32]                                blocks of 64
//   nf4dq  [codes: ceil(n/8) words][qabsmax: ceil(blocks/4) words][(lo, step) f32 per group]
//   int8   [codes: ceil(n/4) words][scale: blocks f32]                                 blocks of 32
// NF4 (QLoRA; bitsandbytes' byte layout): 4-bit indices into the code book NF4_CODE
//   (src/ref/quant.ts), two per byte with the EVEN element in the HIGH nibble (bitsandbytes'
//   kQuantizeBlockwise: `q[2j] << 4 | q[2j+1]`), bytes little-endian in the u32 words; so the bytes of
//   the code section are exactly bitsandbytes' packed uint8 tensor. value = NF4_CODE[q] · absmax.
//   Code choice: q = #{i : x > f32(NF4_MID[i] · absmax)}, NF4_MID the 15 midpoints of adjacent code
//   values (bitsandbytes' decision-tree thresholds): the nearest code value, ties to the lower code.
//   Comparing x against products (never dividing) makes the GPU and the host agree bit for bit: WGSL's
//   f32 multiply is correctly rounded, its division is not.
// nf4dq (double quantization, QLoRA §3): the absmax of each block is stored as 8 bits, linearly over
//   groups of 256 blocks: absmax ≈ fma(q8, step, lo), lo = min of the group, step = f32((max − lo) ·
//   f32(1/255)), q8 = #{j ∈ 0..254 : f32(absmax − lo) > f32((j + ½) · step)}. The NF4 codes are chosen
//   with the exact absmax (as bitsandbytes does). Differs from bitsandbytes, which stores
//   absmax − mean with its 8-bit dynamic-tree map in blocks of 256 and one global mean: a per-group
//   offset needs no global reduction and keeps GPU and host bit-identical.
//   Bits per weight: nf4 4.5, nf4dq ≈ 4.127, int8 9.
// int8: symmetric, blocks of 32: scale d = f32(absmax · f32(1/127)), q = sign(x) · #{j ∈ 0..126 :
//   |x| > f32((j + ½) · d)} (round to nearest, ties toward zero), stored as two's-complement bytes,
//   element 4j in the low byte of word j. value = q · d.
// Quantization runs on the GPU from an f32, bf16 or f16 upload (bf16/f16 packed two per word, as in
// kernels/matmul_forward.wgsl), tensor by tensor. src/ref/quant.ts is the bit-exact host reference.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";
import { DTYPE_CODE, MATMUL_TILE, type WeightDtype } from "./matmul.ts";

export type QuantFormat = "nf4" | "nf4dq" | "int8";
export const QUANT_FORMATS: readonly QuantFormat[] = ["nf4", "nf4dq", "int8"];

/** Params.format of the matmul kernels */
export const FORMAT_CODE: Record<QuantFormat, number> = { nf4: 0, nf4dq: 1, int8: 2 };

export function isQuantFormat(d: string): d is QuantFormat {
  return (QUANT_FORMATS as readonly string[]).includes(d);
}

/** Values per scale block. */
export const QUANT_BLOCK: Record<QuantFormat, number> = { nf4: 64, nf4dq: 64, int8: 32 };
/** Blocks per group of the double-quantized absmax (nf4dq). */
export const DQ_GROUP = 256;

/** Where each part of a quantized weight of n values lives, in u32 words from the buffer start. */
export interface QuantLayout {
  format: QuantFormat;
  /** number of values */
  n: number;
  blockSize: number;
  blocks: number;
  /** words of packed codes, at offset 0 */
  codeWords: number;
  /** first word of the scales (absmax f32, int8 scale f32, or nf4dq's 8-bit absmax codes) */
  scaleOffset: number;
  scaleWords: number;
  /** nf4dq: number of groups of 256 blocks and the first word of their (lo, step) pairs; else 0 */
  groups: number;
  groupOffset: number;
  /** total words */
  words: number;
}

export function quantLayout(n: number, format: QuantFormat): QuantLayout {
  if (!Number.isInteger(n) || n < 1 || n >= 2 ** 32) throw new GpuRuntimeError(`quantLayout: n = ${n} must be an integer in 1..2^32-1`);
  if (!isQuantFormat(format)) throw new GpuRuntimeError(`quantLayout: unknown format '${format}' (formats: ${QUANT_FORMATS.join(", ")})`);
  const blockSize = QUANT_BLOCK[format];
  const blocks = Math.ceil(n / blockSize);
  const codeWords = format === "int8" ? Math.ceil(n / 4) : Math.ceil(n / 8);
  const scaleOffset = codeWords;
  if (format === "nf4dq") {
    const scaleWords = Math.ceil(blocks / 4);
    const groups = Math.ceil(blocks / DQ_GROUP);
    const groupOffset = scaleOffset + scaleWords;
    return { format, n, blockSize, blocks, codeWords, scaleOffset, scaleWords, groups, groupOffset, words: groupOffset + 2 * groups };
  }
  return { format, n, blockSize, blocks, codeWords, scaleOffset, scaleWords: blocks, groups: 0, groupOffset: 0, words: codeWords + blocks };
}

/** Bytes of a quantized weight [N, K]. */
export function quantizedBytes(N: number, K: number, format: QuantFormat): number {
  return quantLayout(N * K, format).words * 4;
}

// ---- quantization --------------------------------------------------------------------------

export interface QuantizeArgs {
  /** at least quantizedBytes: written completely (codes, scales, groups) */
  out: GpuBuffer;
  /** n values in srcDtype (bf16/f16: two per word, element 2j in the low half) */
  src: GpuBuffer;
  /** nf4dq only: f32 [blocks] for the exact absmax (quantScratchBytes); contents undefined after */
  scratch?: GpuBuffer;
}

export interface QuantizeDims {
  n: number;
  format: QuantFormat;
  /** storage of src (default f32) */
  srcDtype?: WeightDtype;
}

/** Bytes of the scratch buffer quantize() needs (0 unless nf4dq). */
export function quantScratchBytes(n: number, format: QuantFormat): number {
  return format === "nf4dq" ? quantLayout(n, format).blocks * 4 : 0;
}

/** Quantizes n values of src into out (see the formats above). */
export function quantize(rt: Runtime, a: QuantizeArgs, d: QuantizeDims): void {
  const L = quantLayout(d.n, d.format);
  const need = L.words * 4;
  if (a.out.size < need) throw new GpuRuntimeError(`quantize: out has ${a.out.size} bytes, ${d.format} of ${d.n} values needs ${need}`);
  const dtype = DTYPE_CODE[d.srcDtype ?? "f32"];
  if (d.format === "int8") {
    rt.dispatch("quantize_int8", {
      params: { n: d.n, dtype, scaleOff: L.scaleOffset },
      bind: { src: a.src, out: a.out },
      workgroups: grid1d(L.codeWords, 256),
    });
    return;
  }
  const dq = d.format === "nf4dq";
  const scratchNeed = quantScratchBytes(d.n, d.format);
  if (dq && (!a.scratch || a.scratch.size < scratchNeed)) {
    throw new GpuRuntimeError(`quantize: nf4dq of ${d.n} values needs a scratch buffer of ${scratchNeed} bytes (got ${a.scratch?.size ?? "none"})`);
  }
  const params = { n: d.n, dtype, dq: dq ? 1 : 0, blocks: L.blocks, scaleOff: L.scaleOffset, scaleWords: L.scaleWords, groupOff: L.groupOffset };
  const bind = { src: a.src, out: a.out, scratch: dq ? a.scratch! : rt.placeholder(0) };
  rt.dispatch("quantize_nf4:main", { params, bind, workgroups: grid1d(L.codeWords, 256) });
  if (dq) rt.dispatch("quantize_nf4:double_quant", { params, bind, workgroups: grid1d(L.groups * 256, 256) });
}

/**
 * A NEW exact-size buffer (rt.pool.allocate, outside the pool: destroy it with rt.pool.destroy or
 * hand it to a persistent Tensor) holding W [N, K] of `src` quantized as `format`. nf4dq takes a
 * pooled scratch buffer for the call and releases it.
 */
export function quantizeToNewBuffer(
  rt: Runtime,
  src: GpuBuffer,
  d: { N: number; K: number; format: QuantFormat; srcDtype?: WeightDtype },
  label = "quantized",
): GpuBuffer {
  const n = d.N * d.K;
  const out = rt.pool.allocate(quantLayout(n, d.format).words * 4, label);
  const sb = quantScratchBytes(n, d.format);
  const scratch = sb > 0 ? rt.pool.acquire(sb, "quantize scratch") : undefined;
  quantize(rt, { out, src, scratch }, { n, format: d.format, srcDtype: d.srcDtype });
  if (scratch) rt.pool.release(scratch); // reused only by dispatches recorded later
  return out;
}

// ---- matmuls ---------------------------------------------------------------------------------

export interface QuantMatmulDims {
  M: number;
  N: number;
  K: number;
  format: QuantFormat;
}

function checkDims(what: string, d: QuantMatmulDims): QuantLayout {
  for (const [k, v] of Object.entries({ M: d.M, N: d.N, K: d.K })) {
    if (!Number.isInteger(v) || v < 1) throw new GpuRuntimeError(`${what}: ${k} = ${v} must be a positive integer`);
  }
  const tiles = Math.max(Math.ceil(d.M / MATMUL_TILE), Math.ceil(d.N / MATMUL_TILE), Math.ceil(d.K / MATMUL_TILE));
  if (tiles > 65535) throw new GpuRuntimeError(`${what}: ${d.M}x${d.N}x${d.K} needs more than 65535 workgroups in one grid dimension`);
  return quantLayout(d.N * d.K, d.format);
}

function quantParams(L: QuantLayout): { format: number; scaleOff: number; groupOff: number } {
  return { format: FORMAT_CODE[L.format], scaleOff: L.scaleOffset, groupOff: L.groupOffset };
}

export interface QuantMatmulForwardArgs {
  /** f32 [M, N] */
  out: GpuBuffer;
  /** f32 [M, K] */
  inp: GpuBuffer;
  /** quantized [N, K] (one buffer, layout above) */
  weight: GpuBuffer;
  /** f32 [N], optional */
  bias?: GpuBuffer;
}

/** out = inp · dequant(weight)ᵀ (+ bias) */
export function matmulQuantForward(rt: Runtime, a: QuantMatmulForwardArgs, d: QuantMatmulDims): void {
  const L = checkDims("matmulQuantForward", d);
  rt.dispatch("matmul_quant_forward", {
    params: { M: d.M, N: d.N, K: d.K, hasBias: a.bias ? 1 : 0, ...quantParams(L) },
    bind: { inp: a.inp, weight: a.weight, bias: a.bias ?? a.weight, out: a.out },
    workgroups: [Math.ceil(d.N / MATMUL_TILE), Math.ceil(d.M / MATMUL_TILE)],
  });
}

export interface QuantMatmulBackwardInputArgs {
  /** f32 [M, K]: written, or added to with accumulate */
  dinp: GpuBuffer;
  /** f32 [M, N] */
  dout: GpuBuffer;
  /** quantized [N, K] */
  weight: GpuBuffer;
}

/** dinp = dout · dequant(weight); with accumulate: dinp += dout · dequant(weight) */
export function matmulQuantBackwardInput(
  rt: Runtime,
  a: QuantMatmulBackwardInputArgs,
  d: QuantMatmulDims & { accumulate?: boolean },
): void {
  const L = checkDims("matmulQuantBackwardInput", d);
  rt.dispatch("matmul_quant_backward_input", {
    params: { M: d.M, N: d.N, K: d.K, accumulate: d.accumulate ? 1 : 0, ...quantParams(L) },
    bind: { dout: a.dout, weight: a.weight, dinp: a.dinp },
    workgroups: [Math.ceil(d.K / MATMUL_TILE), Math.ceil(d.M / MATMUL_TILE)],
  });
}
