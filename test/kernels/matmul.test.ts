// matmul_forward / matmul_backward_input / matmul_backward_weight against the float64 reference
// (src/ref/matmul.ts) at awkward sizes, every weight dtype, batched, and against central finite
// differences of the reference forward.
import { describe, expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import {
  matmulBackwardInput,
  matmulBackwardWeight,
  matmulForward,
  matmulWeightGradScratchBytes,
  matmulWeightGradSplits,
  type WeightDtype,
} from "../../src/ops/matmul.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { matmulBackward as refBackward, matmulForward as refForward, type RefMatmulDims } from "../../src/ref/matmul.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -23;

/**
 * Tolerance for an f32 sum of L products of unit normals. rtol 1e-5 covers most outputs, but an
 * output near zero is the difference of partial sums of size ~sqrt(L): each of the L roundings is
 * up to eps·sqrt(L) and they random-walk, so the absolute error is ~0.2·eps·L (std); 4·eps·L is a
 * 20-sigma bound. `extra` adds the magnitude of a value the result was accumulated onto.
 */
function sumTol(L: number, extra = 0): { rtol: number; atol: number } {
  return { rtol: 1e-5, atol: 4 * EPS32 * (L + extra) + 1e-7 };
}

/** A weight of n values stored as `dtype`, and the same values as stored, in float64. */
function makeWeight(rng: Rng, n: number, dtype: WeightDtype): { data: Float32Array | Uint32Array; values: Float64Array } {
  const raw = rng.normalF32(n);
  if (dtype === "f32") return { data: raw, values: Float64Array.from(raw) };
  const data = packHalves(raw, dtype);
  return { data, values: unpackHalves(data, n, dtype) };
}

function release(rt: Runtime, ...bufs: GpuBuffer[]): void {
  for (const b of bufs) rt.pool.release(b);
}

interface Case extends RefMatmulDims {
  bias?: boolean;
  dtype?: WeightDtype;
}

function label(c: Case): string {
  return `${c.M}x${c.N}x${c.K} batch ${c.batch ?? 1}${c.sharedW ? " shared" : ""} ${c.dtype ?? "f32"}${c.bias ? " +bias" : ""}`;
}

async function checkForward(rt: Runtime, rng: Rng, c: Case): Promise<void> {
  const { M, N, K, batch = 1, sharedW = false, dtype = "f32" } = c;
  const wBatches = sharedW ? 1 : batch;
  const inp = rng.normalF32(batch * M * K);
  const w = makeWeight(rng, wBatches * N * K, dtype);
  const bias = c.bias ? rng.normalF32(wBatches * N) : null;
  const INP = rt.upload(inp), W = rt.upload(w.data), OUT = rt.pool.acquire(batch * M * N * 4);
  const BIAS = bias ? rt.upload(bias) : undefined;
  matmulForward(rt, { out: OUT, inp: INP, weight: W, bias: BIAS }, { M, N, K, batch, sharedW, dtype });
  const got = await rt.readF32(OUT, batch * M * N);
  expectClose(got, refForward(inp, w.values, bias, { M, N, K, batch, sharedW }), { ...sumTol(K, c.bias ? 4 : 0), label: `forward ${label(c)}` });
  release(rt, INP, W, OUT, ...(BIAS ? [BIAS] : []));
}

describe("matmul_forward", () => {
  test("matches the reference at awkward sizes, with and without bias", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-forward");
    const sizes = [
      [1, 1, 1], [1, 7, 33], [7, 1, 257], [33, 163, 7], [163, 257, 33], [100, 129, 70], [257, 100, 163], [128, 128, 16],
      [130, 260, 9],
    ];
    let i = 0;
    for (const [M, N, K] of sizes) await checkForward(rt, rng, { M, N, K, bias: i++ % 2 === 0 });
  });

  test("bf16 and f16 weights give the product of the stored values", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-forward-16");
    for (const dtype of ["bf16", "f16"] as const) {
      // odd K and odd N·K: packed pairs straddle weight rows
      for (const [M, N, K] of [[100, 129, 70], [33, 65, 37], [7, 257, 1]]) {
        await checkForward(rt, rng, { M, N, K, dtype, bias: true });
      }
    }
  });

  test("batched, with per-batch and shared weights", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-forward-batched");
    await checkForward(rt, rng, { M: 37, N: 45, K: 29, batch: 3, bias: true });
    await checkForward(rt, rng, { M: 37, N: 45, K: 29, batch: 3, sharedW: true, bias: true });
    await checkForward(rt, rng, { M: 5, N: 33, K: 7, batch: 4, dtype: "bf16" }); // N·K odd: batches start mid-word
    await checkForward(rt, rng, { M: 130, N: 9, K: 131, batch: 2, sharedW: true, dtype: "f16" });
  });

  test("rejects sizes it cannot dispatch", async () => {
    const rt = await gpuRuntime();
    const b = rt.pool.acquire(64);
    expect(() => matmulForward(rt, { out: b, inp: b, weight: b }, { M: 0, N: 1, K: 1 })).toThrow(/M = 0/);
    expect(() => matmulForward(rt, { out: b, inp: b, weight: b }, { M: 1, N: 1, K: 1, batch: 70000 })).toThrow(/65535/);
    rt.pool.release(b);
  });
});

describe("matmul_backward_input", () => {
  async function check(rt: Runtime, rng: Rng, c: Case & { accumulate: boolean }): Promise<void> {
    const { M, N, K, batch = 1, sharedW = false, dtype = "f32" } = c;
    const wBatches = sharedW ? 1 : batch;
    const dout = rng.normalF32(batch * M * N);
    const w = makeWeight(rng, wBatches * N * K, dtype);
    const init = rng.normalF32(batch * M * K);
    const DOUT = rt.upload(dout), W = rt.upload(w.data), DINP = rt.upload(init);
    matmulBackwardInput(rt, { dinp: DINP, dout: DOUT, weight: W }, { M, N, K, batch, sharedW, dtype, accumulate: c.accumulate });
    const got = await rt.readF32(DINP, batch * M * K);
    const want = refBackward(dout, new Float64Array(batch * M * K), w.values, { M, N, K, batch, sharedW }).dinp;
    if (c.accumulate) for (let i = 0; i < want.length; i++) want[i] += init[i];
    expectClose(got, want, { ...sumTol(N, c.accumulate ? 4 : 0), label: `dinp ${label(c)} accumulate=${c.accumulate}` });
    release(rt, DOUT, W, DINP);
  }

  test("writes (and with accumulate adds) dout · W at awkward sizes", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-dinp");
    const sizes = [[1, 7, 33], [7, 1, 1], [163, 33, 257], [100, 129, 70], [257, 163, 9]];
    let i = 0;
    for (const [M, N, K] of sizes) await check(rt, rng, { M, N, K, accumulate: i++ % 2 === 1 });
  });

  test("16-bit weights and batches", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-dinp-16");
    await check(rt, rng, { M: 100, N: 129, K: 37, dtype: "bf16", accumulate: true });
    await check(rt, rng, { M: 33, N: 65, K: 131, dtype: "f16", accumulate: false });
    await check(rt, rng, { M: 37, N: 45, K: 29, batch: 3, accumulate: false });
    await check(rt, rng, { M: 37, N: 45, K: 29, batch: 3, sharedW: true, dtype: "bf16", accumulate: true });
  });
});

describe("matmul_backward_weight", () => {
  async function check(rt: Runtime, rng: Rng, c: Case & { splits: number }): Promise<void> {
    const { M, N, K, batch = 1, sharedW = false, splits } = c;
    const wBatches = sharedW ? 1 : batch;
    const dout = rng.normalF32(batch * M * N), inp = rng.normalF32(batch * M * K);
    const initW = rng.normalF32(wBatches * N * K), initB = rng.normalF32(wBatches * N);
    const DOUT = rt.upload(dout), INP = rt.upload(inp), DW = rt.upload(initW);
    const DB = c.bias ? rt.upload(initB) : undefined;
    const scratchBytes = matmulWeightGradScratchBytes({ M, N, K, batch, sharedW, splits });
    const SCRATCH = scratchBytes > 0 ? rt.pool.acquire(scratchBytes) : undefined;
    matmulBackwardWeight(rt, { dweight: DW, dout: DOUT, inp: INP, dbias: DB, scratch: SCRATCH }, { M, N, K, batch, sharedW, splits });
    const ref = refBackward(dout, inp, new Float64Array(wBatches * N * K), { M, N, K, batch, sharedW });
    const rows = sharedW ? M * batch : M;
    const want = ref.dweight.map((v, i) => v + initW[i]);
    const what = `${label(c)} splits ${splits}`;
    expectClose(await rt.readF32(DW, want.length), want, { ...sumTol(rows, 4), label: `dweight ${what}` });
    if (DB) {
      const wantB = ref.dbias.map((v, i) => v + initB[i]);
      expectClose(await rt.readF32(DB, wantB.length), wantB, { ...sumTol(rows, 4), label: `dbias ${what}` });
    }
    release(rt, DOUT, INP, DW, ...(DB ? [DB] : []), ...(SCRATCH ? [SCRATCH] : []));
  }

  test("accumulates doutᵀ · inp and the bias at awkward sizes, without split", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-dw");
    const sizes = [[1, 7, 33], [7, 1, 1], [163, 100, 70], [300, 33, 129], [33, 257, 130]];
    let i = 0;
    for (const [M, N, K] of sizes) await check(rt, rng, { M, N, K, bias: i++ % 2 === 0, splits: 1 });
  });

  test("split-K partial sums reduce to the same gradient", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-dw-split");
    await check(rt, rng, { M: 300, N: 33, K: 129, bias: true, splits: 3 });
    await check(rt, rng, { M: 163, N: 130, K: 7, bias: false, splits: 4 });
    await check(rt, rng, { M: 17, N: 9, K: 11, bias: true, splits: 5 }); // trailing splits hold no rows
  });

  test("batched: per-batch weights (with split) and a shared weight (rows folded)", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-dw-batched");
    await check(rt, rng, { M: 45, N: 37, K: 29, batch: 3, bias: true, splits: 2 });
    await check(rt, rng, { M: 45, N: 37, K: 29, batch: 3, sharedW: true, bias: true, splits: 1 });
    await check(rt, rng, { M: 45, N: 37, K: 29, batch: 2, sharedW: true, bias: false, splits: 3 });
  });

  test("split heuristics and the scratch check", async () => {
    const rt = await gpuRuntime();
    // GPT-2 large W_Q: 100 output tiles from 5120 rows: split to fill an H100
    const s = matmulWeightGradSplits({ M: 5120, N: 1280, K: 1280 });
    expect(s).toBeGreaterThanOrEqual(2);
    expect(matmulWeightGradScratchBytes({ M: 5120, N: 1280, K: 1280, splits: s })).toBe(s * (1280 * 1280 + 1280) * 4);
    expect(matmulWeightGradSplits({ M: 5120, N: 4096, K: 4096 })).toBe(1); // 1024 tiles
    expect(matmulWeightGradSplits({ M: 100, N: 7, K: 7 })).toBe(1); // too few rows to split
    const b = rt.pool.acquire(64);
    expect(() => matmulBackwardWeight(rt, { dweight: b, dout: b, inp: b }, { M: 600, N: 4, K: 4, splits: 2 })).toThrow(/scratch/);
    rt.pool.release(b);
  });
});

describe("matmul backward vs finite differences", () => {
  /** Central differences of loss = sum(ref forward · dout) with respect to every entry of x. */
  function numericGrad(x: Float64Array, loss: () => number, h = 1e-3): Float64Array {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const old = x[i];
      x[i] = old + h;
      const up = loss();
      x[i] = old - h;
      const down = loss();
      x[i] = old;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  }

  for (const sharedW of [false, true]) {
    test(`reference and GPU gradients match central differences (batch 2, ${sharedW ? "shared" : "per-batch"} weight)`, async () => {
      const rt = await gpuRuntime();
      const rng = testRng(`matmul-fd-${sharedW}`);
      const M = 13, N = 11, K = 9, batch = 2;
      const dims = { M, N, K, batch, sharedW };
      const wBatches = sharedW ? 1 : batch;
      const inp = Float64Array.from(rng.normalF32(batch * M * K));
      const w = Float64Array.from(rng.normalF32(wBatches * N * K));
      const bias = Float64Array.from(rng.normalF32(wBatches * N));
      const dout = Float64Array.from(rng.normalF32(batch * M * N));
      const loss = () => refForward(inp, w, bias, dims).reduce((s, v, i) => s + v * dout[i], 0);
      const fd = { dinp: numericGrad(inp, loss), dweight: numericGrad(w, loss), dbias: numericGrad(bias, loss) };
      const ref = refBackward(dout, inp, w, dims);
      // the loss is linear in each entry: central differences are exact up to float64 rounding
      for (const k of ["dinp", "dweight", "dbias"] as const) expectClose(ref[k], fd[k], { rtol: 1e-7, atol: 1e-8, label: `ref ${k}` });

      const f32 = (x: Float64Array) => Float32Array.from(x);
      const DOUT = rt.upload(f32(dout)), INP = rt.upload(f32(inp)), W = rt.upload(f32(w));
      const DINP = rt.pool.acquire(inp.length * 4), DW = rt.upload(new Float32Array(w.length)), DB = rt.upload(new Float32Array(bias.length));
      matmulBackwardInput(rt, { dinp: DINP, dout: DOUT, weight: W }, dims);
      matmulBackwardWeight(rt, { dweight: DW, dout: DOUT, inp: INP, dbias: DB }, dims);
      const rows = sharedW ? M * batch : M;
      expectClose(await rt.readF32(DINP, inp.length), fd.dinp, { ...sumTol(N), label: "gpu dinp vs fd" });
      expectClose(await rt.readF32(DW, w.length), fd.dweight, { ...sumTol(rows), label: "gpu dweight vs fd" });
      expectClose(await rt.readF32(DB, bias.length), fd.dbias, { ...sumTol(rows), label: "gpu dbias vs fd" });
      release(rt, DOUT, INP, W, DINP, DW, DB);
    });
  }
});
