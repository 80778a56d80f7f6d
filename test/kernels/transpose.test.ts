// kernels/transpose.wgsl against a host transpose (src/ref/transpose.ts transpose2d, the loop that
// loading used before) and the host's exact widening (src/io/safetensors.ts bf16ToF32, f16ToF32).
// A transpose moves bits, so everything is compared bit for bit (NaN only as NaN: f16 NaN payloads
// are not canonicalised on the GPU). 16-bit inputs are random bit patterns: subnormals, infinities
// and NaNs included.
import { expect, test } from "bun:test";
import { transpose2d } from "../../src/ref/transpose.ts";
import { bf16ToF32, f16ToF32 } from "../../src/io/safetensors.ts";
import type { WeightDtype } from "../../src/ops/matmul.ts";
import { storedBytes, transpose, widenToF32 } from "../../src/ops/transpose.ts";
import type { Rng } from "../../src/util/random.ts";
import { gpuRuntime, testRng } from "../helpers.ts";

/** n random values in dtype: f32 normal values, 16-bit random bit patterns */
function randomStored(rng: Rng, n: number, dtype: WeightDtype): Float32Array | Uint16Array {
  if (dtype === "f32") return rng.normalF32(n);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = rng.int(65536);
  return bits;
}

/** the data as a whole number of u32 words (16-bit: zero pad) */
function words(data: Float32Array | Uint16Array): Uint32Array {
  const padded = new Uint16Array(Math.max(2, Math.ceil(data.byteLength / 4) * 2));
  padded.set(new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2));
  return new Uint32Array(padded.buffer);
}

function widen(data: Float32Array | Uint16Array, dtype: WeightDtype): Float32Array {
  if (dtype === "f32") return data as Float32Array;
  return dtype === "bf16" ? bf16ToF32(data as Uint16Array) : f16ToF32(data as Uint16Array);
}

/** got vs want as u32 words; NaN == NaN when f32 */
function expectSameBits(got: Uint32Array, want: Uint32Array, f32: boolean, label: string): void {
  expect(got.length).toBe(want.length);
  const gf = new Float32Array(got.buffer, got.byteOffset, got.length);
  const wf = new Float32Array(want.buffer, want.byteOffset, want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    if (got[i] === want[i] || (f32 && Number.isNaN(gf[i]) && Number.isNaN(wf[i]))) continue;
    bad.push(`[${i}] got 0x${got[i].toString(16)} want 0x${want[i].toString(16)}`);
  }
  if (bad.length) throw new Error(`${label}: ${bad.join("; ")}`);
}

/** src [rows, cols] → out [ncols, rows] on the GPU, checked against the host */
async function check(rng: Rng, rows: number, cols: number, srcDtype: WeightDtype, outDtype: WeightDtype, col0 = 0, ncols = cols - col0) {
  const rt = await gpuRuntime();
  const data = randomStored(rng, rows * cols, srcDtype);
  const src = rt.upload(words(data));
  const outBytes = storedBytes(ncols * rows, outDtype);
  const out = rt.pool.acquire(outBytes);
  rt.write(out, new Uint32Array(out.size / 4).fill(0xdeadbeef)); // every word the kernel owns must be written
  transpose(rt, { out, src }, { rows, cols, col0, ncols, srcDtype, outDtype });
  const got = new Uint32Array(await rt.read(out, outBytes));
  const full = transpose2d(data, rows, cols).slice(col0 * rows, (col0 + ncols) * rows); // [ncols, rows]
  const want = words(outDtype === "f32" ? widen(full, srcDtype) : full);
  expectSameBits(got, want, outDtype === "f32", `${rows}x${cols} [${col0}, ${col0 + ncols}) ${srcDtype}→${outDtype}`);
  rt.pool.release(src);
  rt.pool.release(out);
}

const SIZES: [number, number][] = [[1, 1], [7, 163], [163, 7], [1, 9], [9, 1], [65, 33], [64, 32], [130, 97], [3, 5]];

test("f32 transposes match the host at awkward sizes", async () => {
  const rng = testRng("transpose-f32");
  for (const [r, c] of SIZES) await check(rng, r, c, "f32", "f32");
});

test("bf16 and f16 transposes keep their bits, odd row and column counts included", async () => {
  const rng = testRng("transpose-16");
  for (const dtype of ["bf16", "f16"] as const) {
    for (const [r, c] of SIZES) await check(rng, r, c, dtype, dtype);
    await check(rng, 129, 67, dtype, dtype); // odd out rows: words straddle out rows and tiles
    await check(rng, 63, 65, dtype, dtype);
  }
});

test("bf16 and f16 transposed to f32 widen exactly (subnormals, infinities, NaN)", async () => {
  const rng = testRng("transpose-widen");
  for (const dtype of ["bf16", "f16"] as const) for (const [r, c] of SIZES) await check(rng, r, c, dtype, "f32");
});

test("column windows: a fused [C, 3C] weight cut into three transposed [C, C] blocks", async () => {
  const rng = testRng("transpose-window");
  for (const dtype of ["f32", "bf16", "f16"] as const) {
    for (const C of [1, 7, 33, 65]) {
      for (let k = 0; k < 3; k++) {
        await check(rng, C, 3 * C, dtype, dtype, k * C, C);
        if (dtype !== "f32") await check(rng, C, 3 * C, dtype, "f32", k * C, C);
      }
    }
    await check(rng, 37, 101, dtype, dtype, 13, 51); // an odd window at an odd offset
  }
});

test("widenToF32 matches the host's exact conversion", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("widen");
  for (const dtype of ["f32", "bf16", "f16"] as const) {
    for (const n of [1, 7, 163, 1000, 70_001]) {
      const data = randomStored(rng, n, dtype);
      const src = rt.upload(words(data));
      const out = rt.pool.acquire(n * 4);
      widenToF32(rt, { out, src }, { n, srcDtype: dtype });
      const got = new Uint32Array(await rt.read(out, n * 4));
      const want = widen(data, dtype);
      expectSameBits(got, new Uint32Array(want.buffer, want.byteOffset, n), true, `widen ${dtype} n=${n}`);
      rt.pool.release(src);
      rt.pool.release(out);
    }
  }
});

test("bad windows and dtype pairs are refused", async () => {
  const rt = await gpuRuntime();
  const b = rt.pool.acquire(1024);
  expect(() => transpose(rt, { out: b, src: b }, { rows: 4, cols: 6, col0: 4, ncols: 3, srcDtype: "f32", outDtype: "f32" })).toThrow(/outside/);
  expect(() => transpose(rt, { out: b, src: b }, { rows: 4, cols: 6, srcDtype: "f32", outDtype: "bf16" })).toThrow(/not supported/);
  expect(() => transpose(rt, { out: b, src: b }, { rows: 40, cols: 60, srcDtype: "f32", outDtype: "f32" })).toThrow(/bytes/);
  rt.pool.release(b);
});
