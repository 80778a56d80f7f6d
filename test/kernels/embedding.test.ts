import { expect, test } from "bun:test";
import { checkTokenIds, embeddingForward, type EmbeddingDtype } from "../../src/ops/embedding.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { embeddingForward as embeddingRef } from "../../src/ref/embedding.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";
import type { Rng } from "../../src/util/random.ts";

/** A table in `dtype` for the GPU and the same values, as stored, in float64 for the reference. */
function table(rng: Rng, rows: number, C: number, dtype: EmbeddingDtype): { data: Uint32Array | Float32Array; values: Float64Array } {
  const raw = rng.normalF32(rows * C);
  if (dtype === "f32") return { data: raw, values: Float64Array.from(raw) };
  const data = packHalves(raw, dtype);
  return { data, values: unpackHalves(data, rows * C, dtype) };
}

function randomIds(rng: Rng, n: number, V: number): Uint32Array {
  return Uint32Array.from({ length: n }, () => rng.int(V));
}

test("the bf16 and f16 encoders round to nearest even like the platform's Float16Array", () => {
  const rng = testRng("dtype");
  expect(f32ToBf16Bits(1)).toBe(0x3f80);
  expect(f32ToBf16Bits(-2.5)).toBe(0xc020);
  expect(f32ToF16Bits(1)).toBe(0x3c00);
  expect(f32ToF16Bits(65504)).toBe(0x7bff);
  expect(f32ToF16Bits(70000)).toBe(0x7c00);
  expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
  // random normal values at several scales, including subnormal halves
  const xs = [...rng.normalF32(4000), ...rng.normalF32(2000, 1e-5), ...rng.normalF32(2000, 3000)];
  const want = new Uint16Array(new Float16Array(xs).buffer);
  for (let i = 0; i < xs.length; i++) {
    if (f32ToF16Bits(xs[i]) !== want[i]) throw new Error(`f16 of ${xs[i]}: got ${f32ToF16Bits(xs[i])} want ${want[i]}`);
    expect(f16BitsToF32(want[i])).toBe(new Float16Array([xs[i]])[0]);
  }
  // bf16: the result is one of the two neighbouring bf16 values and the nearer one
  for (const x of xs) {
    const got = bf16BitsToF32(f32ToBf16Bits(x));
    const f = new Float32Array([x]);
    const bits = new Uint32Array(f.buffer)[0];
    const lo = bf16BitsToF32(bits >>> 16), hi = bf16BitsToF32((bits >>> 16) + 1);
    const best = Math.abs(x - lo) <= Math.abs(x - hi) ? lo : hi;
    if (Math.abs(x - got) > Math.abs(x - best)) throw new Error(`bf16 of ${x}: got ${got}, nearer is ${best}`);
  }
});

for (const dtype of ["f32", "bf16", "f16"] as const) {
  test(`embedding_forward (${dtype}) matches the float64 reference on the same weights upcast`, async () => {
    const rt = await gpuRuntime();
    const rng = testRng(`embedding-${dtype}`);
    // odd C puts 16-bit rows at odd element offsets (a row starts in the high half of a word)
    for (const [N, C, V, P] of [[1, 1, 3, 2], [7, 7, 11, 9], [37, 163, 50, 40], [5, 64, 9, 5], [300, 6, 1000, 301]]) {
      const wte = table(rng, V, C, dtype), wpe = table(rng, P, C, dtype);
      const ids = randomIds(rng, N, V), pos = randomIds(rng, N, P);
      const bufs = [rt.upload(wte.data), rt.upload(wpe.data), rt.upload(ids), rt.upload(pos)];
      const [Wte, Wpe, Ids, Pos] = bufs;
      const out = rt.pool.acquire(N * C * 4), out2 = rt.pool.acquire(N * C * 4);
      embeddingForward(rt, { out, ids: Ids, wte: Wte }, { N, C, V, dtype });
      embeddingForward(rt, { out: out2, ids: Ids, wte: Wte, wpe: Wpe, pos: Pos }, { N, C, V, P, dtype });
      // a gather of exact values is exact
      expectClose(await rt.readF32(out, N * C), embeddingRef(ids, wte.values, C), { rtol: 0, atol: 0, label: `${dtype} N=${N} C=${C}` });
      // one f32 addition: within half an ulp of |a| + |b| <= 1e-6 for these magnitudes
      expectClose(await rt.readF32(out2, N * C), embeddingRef(ids, wte.values, C, wpe.values, pos), {
        rtol: 1e-6, atol: 1e-6, label: `${dtype}+wpe N=${N} C=${C}`,
      });
      for (const b of [...bufs, out, out2]) rt.pool.release(b);
    }
  });
}

test("embedding_forward clamps out-of-range ids and positions instead of reading out of bounds", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("embedding-clamp");
  const N = 6, C = 5, V = 4, P = 3;
  for (const dtype of ["f32", "bf16"] as const) {
    const wte = table(rng, V, C, dtype), wpe = table(rng, P, C, dtype);
    const ids = Uint32Array.from([0, 3, 4, 1000, 0xffffffff, 2]);
    const pos = Uint32Array.from([2, 3, 0, 77, 1, 0xffffffff]);
    const bufs = [rt.upload(wte.data), rt.upload(wpe.data), rt.upload(ids), rt.upload(pos)];
    const out = rt.pool.acquire(N * C * 4);
    embeddingForward(rt, { out, ids: bufs[2], wte: bufs[0], wpe: bufs[1], pos: bufs[3] }, { N, C, V, P, dtype });
    const cl = (xs: Uint32Array, n: number) => Array.from(xs, (x) => Math.min(x, n - 1));
    expectClose(await rt.readF32(out, N * C), embeddingRef(cl(ids, V), wte.values, C, wpe.values, cl(pos, P)), {
      rtol: 1e-6, atol: 1e-6, label: `clamp ${dtype}`,
    });
    for (const b of [...bufs, out]) rt.pool.release(b);
  }
  expect(() => checkTokenIds([0, 3, 4], 4)).toThrow(/token id 4 at position 2/);
  expect(() => checkTokenIds([0, 3], 4)).not.toThrow();
});
