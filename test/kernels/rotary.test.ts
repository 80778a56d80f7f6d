// Rotary embeddings: the host-side inverse frequencies (default and Llama-3.1 "llama3" scaling,
// checked against values worked out by hand), the GPU forward/backward against the float64
// reference, the reference backward against central finite differences, and backward(forward(x)) = x.
import { expect, test } from "bun:test";
import { rotaryBackward, rotaryForward } from "../../src/ops/rotary.ts";
import {
  ropeInvFreq,
  rotaryBackward as rotaryBackwardRef,
  rotaryForward as rotaryForwardRef,
  sequentialPositions,
  type Llama3RopeScaling,
} from "../../src/ref/rotary.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const LLAMA31: Llama3RopeScaling = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

test("default inverse frequencies are theta^(-2i/HS), rounded to f32", () => {
  const f = ropeInvFreq(128, 10000);
  expect(f.length).toBe(64);
  expect(f[0]).toBe(1);
  expect(f[16]).toBe(Math.fround(0.1)); // 10000^(-32/128) = 10000^(-1/4) = 0.1
  expect(f[32]).toBe(Math.fround(0.01)); // 10000^(-64/128) = 10000^(-1/2) = 0.01
  expect(f[48]).toBe(Math.fround(0.001)); // 10000^(-3/4)
  const qwen = ropeInvFreq(64, 1e6);
  expect(qwen[16]).toBe(Math.fround(1e-3)); // 1e6^(-32/64) = 1e-3
  expect(qwen[31]).toBe(Math.fround(Math.pow(10, -6 * (62 / 64)))); // 1e6^(-62/64) = 10^(-5.8125)
});

test("llama3 rope scaling matches values derived by hand", () => {
  // Llama 3.1 8B: HS 128, theta 500000, factor 8, low 1, high 4, original context 8192, so
  // low_freq_wavelen = 8192/1 = 8192 and high_freq_wavelen = 8192/4 = 2048; f_i = 500000^(-i/64).
  const f = ropeInvFreq(128, 500000, LLAMA31);
  const plain = ropeInvFreq(128, 500000);
  // i = 0: f = 1, wavelen = 2 pi = 6.28 < 2048: high frequency, unchanged.
  expect(f[0]).toBe(1);
  // i = 28: wavelen = 2 pi 500000^(28/64) = 2 pi e^(13.1224 * 0.4375) = 2 pi * 311.39 = 1956.5 < 2048:
  // still unchanged (the last high frequency).
  expect(f[28]).toBe(plain[28]);
  // i = 32: f = 500000^(-1/2) = 1/(500 sqrt 2) = sqrt(2)/1000 = 1.41421356237e-3,
  //   wavelen = 2 pi * 500 sqrt 2 = 1000 pi sqrt 2 = 4442.88294 (between 2048 and 8192: medium),
  //   s = (8192 / 4442.88294 - 1) / (4 - 1) = (1.84384782 - 1) / 3 = 0.281282605,
  //   f' = (1 - s) f / 8 + s f = f (0.718717395 / 8 + 0.281282605) = f * 0.371122280
  //      = 1.41421356237e-3 * 0.371122280 = 5.24846161e-4.
  expect(Math.abs(f[32] - 5.24846161e-4) / 5.24846161e-4).toBeLessThan(2e-8 + 1.2e-7);
  // i = 48: f = 500000^(-3/4) = 1/26.5914795^3 = 1/18803.0155 = 5.31829590e-5,
  //   wavelen = 2 pi * 18803.0155 = 118142.8 > 8192: low frequency, f' = f / 8 = 6.64786987e-6.
  expect(Math.abs(f[48] - 6.64786987e-6) / 6.64786987e-6).toBeLessThan(2e-8 + 1.2e-7);
  // every low frequency is divided by 8 exactly (division by a power of two is exact in f32)
  for (let i = 35; i < 64; i++) expect(f[i]).toBe(Math.fround(plain[i] / 8));
  // the smoothed band lies between f/8 and f
  for (let i = 29; i < 35; i++) {
    expect(f[i]).toBeLessThan(plain[i]);
    expect(f[i]).toBeGreaterThan(plain[i] / 8);
  }
});

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

function randomPositions(rng: Rng, n: number, max: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = rng.int(max);
  return p;
}

const CASES = [
  // B, T, NH, HS, positions, frequencies
  { B: 2, T: 7, NH: 4, HS: 8, maxPos: 60000, theta: 10000 }, // large angles: 60000 rad at i = 0
  { B: 1, T: 163, NH: 3, HS: 64, maxPos: 0, theta: 10000 }, // pos = t
  { B: 3, T: 1, NH: 2, HS: 80, maxPos: 200, theta: 1e6 },
  { B: 2, T: 5, NH: 8, HS: 128, maxPos: 9000, theta: 500000, scaling: LLAMA31 },
];

// Each output is x1 cos - x2 sin, a two-term f32 sum of products with cos/sin accurate to ~1e-7:
// its absolute error is a few 1e-7 times |x|, however small the result, hence atol ~ 4e-7 max|x|.
test("rotary forward and backward match the float64 reference", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("rotary");
  for (const c of CASES) {
    const { B, T, NH, HS } = c;
    const n = B * T * NH * HS;
    const x = rng.normalF32(n);
    const pos = c.maxPos ? randomPositions(rng, B * T, c.maxPos) : sequentialPositions(B, T);
    const freq = ropeInvFreq(HS, c.theta, c.scaling);
    const X = rt.upload(x), P = rt.upload(pos), F = rt.upload(freq), out = rt.pool.acquire(n * 4);
    const label = `B${B} T${T} NH${NH} HS${HS}`;
    rotaryForward(rt, out, X, P, F, { B, T, NH, HS });
    const y = await rt.readF32(out, n);
    expectClose(y, rotaryForwardRef(x, pos, freq, B, T, NH, HS), { atol: 4e-7 * maxAbs(x), label: `forward ${label}` });
    rotaryBackward(rt, out, X, P, F, { B, T, NH, HS });
    const dx = await rt.readF32(out, n);
    expectClose(dx, rotaryBackwardRef(x, pos, freq, B, T, NH, HS), { atol: 4e-7 * maxAbs(x), label: `backward ${label}` });
    // backward is the inverse rotation: backward(forward(x)) = x
    const Y = rt.upload(y);
    rotaryBackward(rt, out, Y, P, F, { B, T, NH, HS });
    expectClose(await rt.readF32(out, n), x, { atol: 8e-7 * maxAbs(x), label: `inverse ${label}` });
    for (const b of [X, P, F, out, Y]) rt.pool.release(b);
  }
});

test("rotary reference backward matches central finite differences", () => {
  const rng = testRng("rotary-fd");
  const [B, T, NH, HS] = [2, 3, 2, 8];
  const n = B * T * NH * HS;
  const x = Float64Array.from(rng.normalF32(n));
  const dout = Float64Array.from(rng.normalF32(n));
  const pos = randomPositions(rng, B * T, 5000);
  const freq = ropeInvFreq(HS, 10000, LLAMA31);
  const loss = (xx: Float64Array) => rotaryForwardRef(xx, pos, freq, B, T, NH, HS).reduce((s, o, i) => s + o * dout[i], 0);
  const analytic = rotaryBackwardRef(dout, pos, freq, B, T, NH, HS);
  const numeric = new Float64Array(n);
  const eps = 1e-5;
  for (let i = 0; i < n; i++) {
    const save = x[i];
    x[i] = save + eps;
    const up = loss(x);
    x[i] = save - eps;
    numeric[i] = (up - loss(x)) / (2 * eps);
    x[i] = save;
  }
  expectClose(analytic, numeric, { rtol: 1e-6, atol: 1e-8, label: "rotary finite differences" });
});
