// CPU helpers for 16-bit float storage formats (bf16, IEEE f16), used by the embedding reference and
// tests: round f32 values the way a checkpoint stores them, pack two per u32 word (element 2j in the
// low 16 bits, little-endian as in safetensors), and decode back to numbers.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** number -> IEEE binary16 bits, round to nearest even, with subnormals, overflow to infinity. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  x = f32[0]; // round to f32 first, as a GPU would hold the value
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) {
    // subnormal: units of 2^-24, round half to even
    const q = roundHalfEven(a / 2 ** -24);
    return sign | q; // q = 1024 becomes the smallest normal, which has the same bits
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // guard against log2 rounding
  if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export type HalfDtype = "bf16" | "f16";

/** Packs values as 16-bit floats, two per u32 (element 2j low, 2j+1 high); odd lengths pad with 0. */
export function packHalves(values: ArrayLike<number>, dtype: HalfDtype): Uint32Array {
  const enc = dtype === "bf16" ? f32ToBf16Bits : f32ToF16Bits;
  const out = new Uint32Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    out[i >> 1] |= enc(values[i]) << ((i & 1) * 16);
  }
  return out;
}

/** Decodes n 16-bit floats packed as by packHalves into float64. */
export function unpackHalves(words: Uint32Array, n: number, dtype: HalfDtype): Float64Array {
  const dec = dtype === "bf16" ? bf16BitsToF32 : f16BitsToF32;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = dec((words[i >> 1] >>> ((i & 1) * 16)) & 0xffff);
  return out;
}
