// Host reference for the quantized formats of src/ops/quant.ts (nf4, nf4dq, int8) and for the LoRA
// linear of src/tensor/lora.ts.
// - quantizeRef produces, bit for bit, the buffer the GPU kernels write (kernels/quantize_nf4.wgsl,
//   quantize_int8.wgsl): every f32 operation of the kernels is repeated here with Math.fround (a
//   product of two f32 values is exact in float64, so fround gives the correctly rounded f32 product
//   WGSL guarantees; no division is involved in any decision).
// - dequantizeRef gives the f32 values the matmul kernels see, so that the float64 matmul reference
//   (src/ref/matmul.ts) applied to them is what the quantized matmuls must match.
// - loraForward / loraBackward: the float64 reference of y = x·Wᵀ (+ bias) + s·(x·Aᵀ)·Bᵀ.
import { DQ_GROUP, quantLayout, type QuantFormat, type QuantLayout } from "../ops/quant.ts";

/**
 * The NF4 code book, bitsandbytes' exact float32 values (bitsandbytes/functional.py
 * get_4bit_type("nf4") and csrc/kernels.cu nf4_data; QLoRA, Dettmers et al. 2023, appendix E):
 * quantiles of N(0, 1) normalised to [-1, 1], with an exact 0.
 */
export const NF4_CODE: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** f32 midpoints of adjacent code values: bitsandbytes' dQuantizeNF4 decision thresholds. */
export const NF4_MID: readonly number[] = NF4_CODE.slice(0, 15).map((c, i) => Math.fround((c + NF4_CODE[i + 1]) / 2));

export const INV127 = Math.fround(1 / 127);
export const INV255 = Math.fround(1 / 255);

const fr = Math.fround;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function bitsF32(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

/** NF4 code of x in a block with absmax A: #{i : x > f32(NF4_MID[i]·A)} (ties to the lower code). */
export function nf4Code(x: number, A: number): number {
  let q = 0;
  for (let i = 0; i < 15; i++) if (x > fr(NF4_MID[i] * A)) q++;
  return q;
}

/** int8 code of x with scale d: sign(x)·#{j < 127 : |x| > f32((j + ½)·d)}. */
export function int8Code(x: number, d: number): number {
  const a = Math.abs(x);
  let q = 0;
  while (q < 127 && a > fr((q + 0.5) * d)) q++;
  return x < 0 ? -q : q;
}

/** 8-bit code of an absmax in a double-quantization group: #{j < 255 : f32(a − lo) > f32((j + ½)·step)}. */
export function dqCode(a: number, lo: number, step: number): number {
  const r = fr(a - lo);
  let q = 0;
  while (q < 255 && r > fr((q + 0.5) * step)) q++;
  return q;
}

/**
 * The quantized buffer (u32 words, layout of src/ops/quant.ts) of n = values.length values, which are
 * taken as f32 (round them beforehand if they come from bf16/f16: see src/ref/dtype.ts).
 */
export function quantizeRef(values: ArrayLike<number>, format: QuantFormat): Uint32Array {
  const n = values.length;
  const L = quantLayout(n, format);
  const out = new Uint32Array(L.words);
  const at = (e: number) => (e < n ? fr(values[e]) : 0);
  const absmax = new Float64Array(L.blocks);
  for (let b = 0; b < L.blocks; b++) {
    let m = 0;
    for (let e = b * L.blockSize; e < (b + 1) * L.blockSize; e++) m = Math.max(m, Math.abs(at(e)));
    absmax[b] = m;
  }
  if (format === "int8") {
    for (let b = 0; b < L.blocks; b++) {
      const d = fr(absmax[b] * INV127);
      out[L.scaleOffset + b] = f32Bits(d);
      for (let e = b * 32; e < (b + 1) * 32 && e < 4 * L.codeWords; e++) {
        out[e >> 2] |= (int8Code(at(e), d) & 0xff) << ((e & 3) * 8);
      }
    }
    return out;
  }
  for (let e = 0; e < 8 * L.codeWords; e++) {
    const q = nf4Code(at(e), absmax[Math.floor(e / 64)]);
    out[e >> 3] |= q << nf4Shift(e);
  }
  if (format === "nf4") {
    for (let b = 0; b < L.blocks; b++) out[L.scaleOffset + b] = f32Bits(absmax[b]);
    return out;
  }
  // nf4dq: blocks past the end of the last group are padding with code 0
  for (let g = 0; g < L.groups; g++) {
    const from = g * DQ_GROUP, to = Math.min(from + DQ_GROUP, L.blocks);
    let lo = Infinity, hi = -Infinity;
    for (let b = from; b < to; b++) {
      lo = Math.min(lo, absmax[b]);
      hi = Math.max(hi, absmax[b]);
    }
    const step = fr(fr(hi - lo) * INV255);
    out[L.groupOffset + 2 * g] = f32Bits(lo);
    out[L.groupOffset + 2 * g + 1] = f32Bits(step);
    for (let b = from; b < to; b++) out[L.scaleOffset + (b >> 2)] |= dqCode(absmax[b], lo, step) << ((b & 3) * 8);
  }
  return out;
}

/** Bit position of element e's nibble in its word: byte (e/2)%4, even element in the high nibble. */
export function nf4Shift(e: number): number {
  return (e & 6) * 4 + (e & 1 ? 0 : 4);
}

/** The 4- or 8-bit code of element e. */
export function codeAt(words: Uint32Array, e: number, format: QuantFormat): number {
  if (format === "int8") return ((words[e >> 2] >>> ((e & 3) * 8)) << 24) >> 24;
  return (words[e >> 3] >>> nf4Shift(e)) & 15;
}

/** The absmax of block b (nf4, nf4dq) as the kernels compute it: nf4dq gives fma(q8, step, lo). */
export function blockScale(words: Uint32Array, L: QuantLayout, b: number): number {
  if (L.format !== "nf4dq") return bitsF32(words[L.scaleOffset + b]);
  const q = (words[L.scaleOffset + (b >> 2)] >>> ((b & 3) * 8)) & 0xff;
  const g = Math.floor(b / DQ_GROUP);
  const lo = bitsF32(words[L.groupOffset + 2 * g]);
  const step = bitsF32(words[L.groupOffset + 2 * g + 1]);
  return fr(q * step + lo); // q·step is exact in float64: one rounding, as a fused multiply-add
}

/** The n values of a quantized buffer as the kernels see them (f32: code · scale rounded once). */
export function dequantizeRef(words: Uint32Array, n: number, format: QuantFormat): Float32Array {
  const L = quantLayout(n, format);
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) {
    const b = Math.floor(e / L.blockSize);
    const q = codeAt(words, e, format);
    out[e] = format === "int8" ? fr(q * bitsF32(words[L.scaleOffset + b])) : fr(NF4_CODE[q] * blockScale(words, L, b));
  }
  return out;
}

// ---- LoRA linear ---------------------------------------------------------------------------

export interface RefLoraDims {
  /** rows (tokens) */
  M: number;
  /** out_features */
  N: number;
  /** in_features */
  K: number;
  /** rank */
  r: number;
  /** alpha / r */
  scale: number;
}

/**
 * y [M, N] = x [M, K] · Wᵀ (+ bias [N]) + scale · (x · Aᵀ) · Bᵀ, with W [N, K] (already dequantized
 * values), A [r, K], B [N, r]. Also returns u = x · Aᵀ [M, r].
 */
export function loraForward(
  x: ArrayLike<number>,
  W: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  { M, N, K, r, scale }: RefLoraDims,
): { y: Float64Array; u: Float64Array } {
  const u = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * A[j * K + k];
      u[m * r + j] = s;
    }
  }
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * W[n * K + k];
      let l = 0;
      for (let j = 0; j < r; j++) l += u[m * r + j] * B[n * r + j];
      y[m * N + n] = s + scale * l;
    }
  }
  return { y, u };
}

/**
 * Gradients of loss = sum(y · dy) (W frozen: no gradient):
 *   dB [N, r] = scale · dyᵀ · u             du [M, r] = scale · dy · B
 *   dA [r, K] = duᵀ · x                     dx [M, K] = dy · W + du · A
 */
export function loraBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  W: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  d: RefLoraDims,
): { dx: Float64Array; dA: Float64Array; dB: Float64Array } {
  const { M, N, K, r, scale } = d;
  const { u } = loraForward(x, W, null, A, B, { ...d, N: 0 });
  const du = new Float64Array(M * r);
  const dB = new Float64Array(N * r);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const g = dy[m * N + n];
      for (let j = 0; j < r; j++) {
        du[m * r + j] += scale * g * B[n * r + j];
        dB[n * r + j] += scale * g * u[m * r + j];
      }
    }
  }
  const dA = new Float64Array(r * K);
  const dx = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dy[m * N + n] * W[n * K + k];
      for (let j = 0; j < r; j++) {
        s += du[m * r + j] * A[j * K + k];
        dA[j * K + k] += du[m * r + j] * x[m * K + k];
      }
      dx[m * K + k] = s;
    }
  }
  return { dx, dA, dB };
}
