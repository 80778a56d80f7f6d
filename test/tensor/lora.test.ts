// LoRA linear (src/tensor/lora.ts) over frozen base weights in every storage dtype: a fresh adapter
// (B = 0) leaves the base output unchanged bit for bit; the gradients of A, B and x from the tape
// equal the float64 reference backward (src/ref/quant.ts), which equals central finite differences
// of the reference forward; the frozen linear passes the gradient to x only; W never gets one.
import { afterEach, describe, expect, test } from "bun:test";
import type { Runtime } from "../../src/gpu/runtime.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { dequantizeRef, loraBackward, loraForward, quantizeRef, type RefLoraDims } from "../../src/ref/quant.ts";
import { matmulBackward as refMatmulBackward } from "../../src/ref/matmul.ts";
import { backward, clearTape, noGrad, parameter, tapeLength, zeroGrad } from "../../src/tensor/autodiff.ts";
import { createLoraAdapter, disposeLoraAdapter, frozenLinear, loraLinear, quantizeTensor } from "../../src/tensor/lora.ts";
import { linear } from "../../src/tensor/ops.ts";
import { fromArray, scope, weight, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -23;
type BaseDtype = "f32" | "bf16" | "nf4" | "nf4dq" | "int8";

/** A frozen weight [N, K] stored as dtype, and its values as the kernels see them. */
function makeBase(rt: Runtime, rng: Rng, N: number, K: number, dtype: BaseDtype): { W: Tensor; values: Float64Array } {
  const raw = rng.normalF32(N * K, 0.5);
  if (dtype === "f32") return { W: weight(rt, raw, [N, K], "f32", "W"), values: Float64Array.from(raw) };
  if (dtype === "bf16") {
    const packed = packHalves(raw, "bf16");
    return { W: weight(rt, packed, [N, K], "bf16", "W"), values: unpackHalves(packed, N * K, "bf16") };
  }
  const src = weight(rt, raw, [N, K], "f32", "W-src");
  const W = quantizeTensor(src, dtype, "W");
  src.dispose();
  return { W, values: Float64Array.from(dequantizeRef(quantizeRef(raw, dtype), N * K, dtype)) };
}

/** Per-element bound on an f32 sum: L·eps·Σ|terms| (Σ|terms| from the reference on absolute values). */
function absTol(L: number, absSum: ArrayLike<number>): { rtol: number; atol: number } {
  let m = 0;
  for (let i = 0; i < absSum.length; i++) m = Math.max(m, absSum[i]);
  return { rtol: 1e-5, atol: L * EPS32 * m };
}

const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

describe("loraLinear", () => {
  afterEach(() => clearTape());

  test("a fresh adapter: A ~ U(±1/√K) from the seed, B = 0, output equal to the base linear bit for bit", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lora-init");
    const M = 37, N = 45, K = 70, r = 8;
    const x = fromArray(rt, rng.normalF32(M * K), [M, K], "x");
    for (const dtype of ["f32", "bf16", "nf4", "nf4dq", "int8"] as const) {
      const { W } = makeBase(rt, rng, N, K, dtype);
      const bias = fromArray(rt, rng.normalF32(N), [N], "bias");
      const seed = rng.nextU32();
      const ad = createLoraAdapter(rt, { N, K }, { r, alpha: 16 }, new Rng(seed), "l0.q_proj");
      const twin = createLoraAdapter(rt, { N, K }, { r, alpha: 16 }, new Rng(seed), "twin");
      const a = await ad.A.toF32();
      expect(Array.from(await twin.A.toF32())).toEqual(Array.from(a));
      expect(Array.from(await ad.B.toF32()).every((v) => v === 0)).toBe(true);
      const bound = 1 / Math.sqrt(K);
      let mean = 0, sq = 0;
      for (const v of a) {
        expect(Math.abs(v)).toBeLessThanOrEqual(bound);
        mean += v / a.length;
        sq += (v * v) / a.length;
      }
      expect(Math.abs(mean)).toBeLessThan(0.1 * bound); // U(-b, b): mean 0 ± b/√(3·560)
      expect(sq / (bound * bound / 3)).toBeGreaterThan(0.85); // variance b²/3
      expect(sq / (bound * bound / 3)).toBeLessThan(1.15);
      const y = loraLinear(x, W, ad, bias);
      const y0 = dtype === "f32" || dtype === "bf16" ? linear(x, W, bias) : frozenLinear(x, W, bias);
      const got = await y.toF32(), base = await y0.toF32();
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== base[i]) throw new Error(`${dtype}: [${i}] lora ${got[i]} != base ${base[i]}`);
      }
      for (const t of [W, bias, y, y0]) t.dispose();
      disposeLoraAdapter(ad);
      disposeLoraAdapter(twin);
    }
    x.dispose();
  });

  for (const dtype of ["f32", "bf16", "nf4", "nf4dq", "int8"] as const) {
    test(`${dtype} base: forward and the gradients of A, B, x equal the float64 reference`, async () => {
      const rt = await gpuRuntime();
      const rng = testRng(`lora-grad-${dtype}`);
      const M = 37, N = 45, K = 70, r = 4, alpha = 8;
      const d: RefLoraDims = { M, N, K, r, scale: alpha / r };
      const { W, values: w } = makeBase(rt, rng, N, K, dtype);
      const ad = createLoraAdapter(rt, { N, K }, { r, alpha }, rng, "l0.k_proj");
      const b = rng.normalF32(N * r, 0.5);
      rt.write(ad.B.buf, b); // a trained B, so that every term is exercised
      const a = await ad.A.toF32();
      const xs = rng.normalF32(M * K), dys = rng.normalF32(M * N), bias = rng.normalF32(N);
      const x = parameter(fromArray(rt, xs, [M, K], "x"));
      const biasT = fromArray(rt, bias, [N], "bias"); // frozen
      const y = loraLinear(x, W, ad, biasT);
      const dy = fromArray(rt, dys, [M, N], "dy");
      const want = loraForward(xs, w, bias, a, b, d);
      const absFwd = loraForward(abs(xs), abs(w), abs(bias), abs(a), abs(b), d);
      expectClose(await y.toF32(), want.y, { ...absTol(K + r + 1, absFwd.y), label: `${dtype} forward` });
      expect(tapeLength()).toBe(1);
      backward([{ tensor: y, grad: dy }]);
      expect(tapeLength()).toBe(0);
      const g = loraBackward(dys, xs, w, a, b, d);
      const ga = loraBackward(abs(dys), abs(xs), abs(w), abs(a), abs(b), d);
      expectClose(await ad.A.grad!.toF32(), g.dA, { ...absTol(M + N, ga.dA), label: `${dtype} dA` });
      expectClose(await ad.B.grad!.toF32(), g.dB, { ...absTol(M + K, ga.dB), label: `${dtype} dB` });
      expectClose(await x.grad!.toF32(), g.dx, { ...absTol(N + r + N, ga.dx), label: `${dtype} dx` });
      expect(W.grad).toBeNull();
      expect(biasT.grad).toBeNull();
      for (const t of [x, y, dy, W, biasT]) t.dispose();
      disposeLoraAdapter(ad);
    });
  }

  test("the reference backward equals central finite differences of the reference forward", () => {
    const rng = testRng("lora-fd");
    const M = 6, N = 9, K = 13, r = 3;
    const d: RefLoraDims = { M, N, K, r, scale: 2.5 };
    const x = Float64Array.from(rng.normalF32(M * K)), w = Float64Array.from(rng.normalF32(N * K));
    const A = Float64Array.from(rng.normalF32(r * K)), B = Float64Array.from(rng.normalF32(N * r));
    const bias = Float64Array.from(rng.normalF32(N)), dy = rng.normalF32(M * N);
    const loss = (xx: Float64Array, AA: Float64Array, BB: Float64Array) =>
      loraForward(xx, w, bias, AA, BB, d).y.reduce((s, v, i) => s + v * dy[i], 0);
    const g = loraBackward(dy, x, w, A, B, d);
    const h = 1e-5;
    const check = (arr: Float64Array, grad: Float64Array, which: string) => {
      for (const i of rng.sample(arr.length, Math.min(arr.length, 10))) {
        const keep = arr[i];
        arr[i] = keep + h;
        const up = loss(x, A, B);
        arr[i] = keep - h;
        const down = loss(x, A, B);
        arr[i] = keep;
        const fd = (up - down) / (2 * h);
        if (!(Math.abs(fd - grad[i]) <= 1e-7 * (1 + Math.abs(grad[i])))) throw new Error(`${which}[${i}]: fd ${fd} vs ${grad[i]}`);
      }
    };
    check(A, g.dA, "dA");
    check(B, g.dB, "dB");
    check(x, g.dx, "dx");
  });

  test("a trainable bias gets Σ dy; noGrad records nothing", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lora-bias");
    const M = 20, N = 33, K = 24;
    const { W } = makeBase(rt, rng, N, K, "nf4");
    const ad = createLoraAdapter(rt, { N, K }, { r: 2, alpha: 4 }, rng, "q");
    const x = fromArray(rt, rng.normalF32(M * K), [M, K], "x");
    const bias = parameter(fromArray(rt, rng.normalF32(N), [N], "bias"));
    noGrad(() => loraLinear(x, W, ad, bias).dispose());
    expect(tapeLength()).toBe(0);
    const dys = rng.normalF32(M * N);
    const y = loraLinear(x, W, ad, bias);
    const dy = fromArray(rt, dys, [M, N], "dy");
    backward([{ tensor: y, grad: dy }]);
    const want = new Float64Array(N);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) want[n] += dys[m * N + n];
    expectClose(await bias.grad!.toF32(), want, { rtol: 1e-5, atol: 4 * EPS32 * M, label: "dbias" });
    expect(x.grad).toBeNull();
    for (const t of [x, y, dy, W, bias]) t.dispose();
    disposeLoraAdapter(ad);
  });
});

describe("loraLinear memory", () => {
  afterEach(() => clearTape());

  test("after backward only the gradients of A and B are left in the pool", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lora-free");
    const M = 30, N = 20, K = 64;
    const { W } = makeBase(rt, rng, N, K, "nf4");
    const ad = createLoraAdapter(rt, { N, K }, { r: 4, alpha: 8 }, rng, "q");
    const W0 = weight(rt, rng.normalF32(K * 16), [K, 16], "f32", "W0");
    rt.placeholder(0); // made once per runtime, on first use
    rt.placeholder(1);
    const inUse = rt.pool.stats.inUse;
    const y = scope(() => loraLinear(frozenLinear(fromArray(rt, rng.normalF32(M * 16), [M, 16]), W0), W, ad));
    expect(tapeLength()).toBe(1); // the frozen linear's input needs no gradient: not recorded
    const dy = fromArray(rt, rng.normalF32(M * N), [M, N]);
    backward([{ tensor: y, grad: dy }]);
    y.dispose();
    dy.dispose();
    expect(rt.pool.stats.inUse).toBe(inUse + ad.A.grad!.buf.size + ad.B.grad!.buf.size);
    zeroGrad([ad.A, ad.B]);
    expect(rt.pool.stats.inUse).toBe(inUse);
    W.dispose();
    W0.dispose();
    disposeLoraAdapter(ad);
  });
});

describe("frozenLinear", () => {
  afterEach(() => clearTape());

  test("passes dy · W to x for quantized and 16-bit weights; W gets nothing", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("frozen-linear");
    const M = 9, N = 40, K = 66;
    for (const dtype of ["bf16", "nf4dq", "int8"] as const) {
      const { W, values: w } = makeBase(rt, rng, N, K, dtype);
      const xs = rng.normalF32(M * K), dys = rng.normalF32(M * N);
      const x = parameter(fromArray(rt, xs, [M, K], "x"));
      const y = frozenLinear(x, W);
      const dy = fromArray(rt, dys, [M, N], "dy");
      backward([{ tensor: y, grad: dy }]);
      const want = refMatmulBackward(dys, xs, w, { M, N, K }).dinp;
      const wantAbs = refMatmulBackward(abs(dys), abs(xs), abs(w), { M, N, K }).dinp;
      expectClose(await x.grad!.toF32(), want, { ...absTol(N, wantAbs), label: `${dtype} dx` });
      expect(W.grad).toBeNull();
      expect(W.dtype).toBe(dtype);
      for (const t of [x, y, dy, W]) t.dispose();
    }
  });
});
