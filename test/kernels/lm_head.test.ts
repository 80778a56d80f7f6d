// lm_head_forward / lm_head_backward against the float64 reference (src/ref/lm_head.ts): chosen rows
// and columns, all columns, every weight dtype, split-K in the backward, and central finite
// differences of the reference forward.
import { describe, expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { lmHeadBackward, lmHeadBackwardScratchBytes, lmHeadBackwardSplits, lmHeadForward } from "../../src/ops/lm_head.ts";
import type { WeightDtype } from "../../src/ops/matmul.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { lmHeadBackward as refBackward, lmHeadForward as refForward } from "../../src/ref/lm_head.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -23;

/** f32 sum of L unit-normal products: see sumTol in matmul.test.ts (atol ~20 sigma of the rounding walk). */
function sumTol(L: number, extra = 0): { rtol: number; atol: number } {
  return { rtol: 1e-5, atol: 4 * EPS32 * (L + extra) + 1e-7 };
}

function makeWeight(rng: Rng, n: number, dtype: WeightDtype): { data: Float32Array | Uint32Array; values: Float64Array } {
  const raw = rng.normalF32(n);
  if (dtype === "f32") return { data: raw, values: Float64Array.from(raw) };
  const data = packHalves(raw, dtype);
  return { data, values: unpackHalves(data, n, dtype) };
}

function release(rt: Runtime, ...bufs: (GpuBuffer | undefined)[]): void {
  for (const b of bufs) if (b) rt.pool.release(b);
}

interface Case {
  M: number;
  C: number;
  V: number;
  /** number of chosen rows (distinct) */
  R: number;
  /** number of chosen columns, or null for all V */
  J: number | null;
  dtype: WeightDtype;
}

function pick(rng: Rng, c: Case): { rows: Uint32Array; cols: Uint32Array | null } {
  const rows = Uint32Array.from(rng.sample(c.M, c.R));
  // columns may repeat (a label token chosen twice)
  const cols = c.J === null ? null : Uint32Array.from({ length: c.J }, () => rng.int(c.V));
  return { rows, cols };
}

const name = (c: Case) => `M${c.M} C${c.C} V${c.V} R${c.R} J${c.J ?? "all"} ${c.dtype}`;

async function checkForward(rt: Runtime, rng: Rng, c: Case): Promise<void> {
  const { rows, cols } = pick(rng, c);
  const J = cols ? cols.length : c.V;
  const h = rng.normalF32(c.M * c.C);
  const w = makeWeight(rng, c.V * c.C, c.dtype);
  const H = rt.upload(h), W = rt.upload(w.data), ROWS = rt.upload(rows), COLS = cols ? rt.upload(cols) : undefined;
  const LOGITS = rt.pool.acquire(c.R * J * 4);
  lmHeadForward(rt, { logits: LOGITS, h: H, weight: W, rows: ROWS, cols: COLS }, { R: c.R, J, C: c.C, M: c.M, V: c.V, dtype: c.dtype });
  expectClose(await rt.readF32(LOGITS, c.R * J), refForward(h, w.values, rows, cols, c.C, c.V), {
    ...sumTol(c.C),
    label: `lm_head forward ${name(c)}`,
  });
  release(rt, H, W, ROWS, COLS, LOGITS);
}

async function checkBackward(rt: Runtime, rng: Rng, c: Case, splits: number): Promise<void> {
  const { rows, cols } = pick(rng, c);
  const J = cols ? cols.length : c.V;
  const dlogits = rng.normalF32(c.R * J);
  const w = makeWeight(rng, c.V * c.C, c.dtype);
  const init = rng.normalF32(c.M * c.C);
  const DL = rt.upload(dlogits), W = rt.upload(w.data), ROWS = rt.upload(rows), COLS = cols ? rt.upload(cols) : undefined;
  const DH = rt.upload(init);
  const bytes = lmHeadBackwardScratchBytes({ R: c.R, C: c.C, splits });
  const SCRATCH = bytes > 0 ? rt.pool.acquire(bytes) : undefined;
  lmHeadBackward(
    rt,
    { dh: DH, dlogits: DL, weight: W, rows: ROWS, cols: COLS, scratch: SCRATCH },
    { R: c.R, J, C: c.C, M: c.M, V: c.V, dtype: c.dtype, splits },
  );
  const want = refBackward(dlogits, w.values, rows, cols, c.M, c.C, c.V).map((v, i) => v + init[i]);
  const got = await rt.readF32(DH, c.M * c.C);
  expectClose(got, want, { ...sumTol(J, 4), label: `lm_head backward ${name(c)} splits ${splits}` });
  // rows not chosen come back untouched
  const chosen = new Set(rows);
  for (let m = 0; m < c.M; m++) {
    if (chosen.has(m)) continue;
    for (let i = m * c.C; i < (m + 1) * c.C; i++) if (got[i] !== init[i]) throw new Error(`dh row ${m} (not chosen) changed at ${i}`);
  }
  release(rt, DL, W, ROWS, COLS, DH, SCRATCH);
}

describe("lm_head_forward", () => {
  test("chosen rows and chosen columns, every weight dtype", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lm-head-forward");
    for (const dtype of ["f32", "bf16", "f16"] as const) {
      await checkForward(rt, rng, { M: 20, C: 70, V: 300, R: 7, J: 33, dtype });
      await checkForward(rt, rng, { M: 90, C: 33, V: 163, R: 37, J: 2, dtype }); // odd C: packed pairs straddle rows
    }
    await checkForward(rt, rng, { M: 1, C: 1, V: 1, R: 1, J: 1, dtype: "f32" });
  });

  test("all columns", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lm-head-forward-all");
    await checkForward(rt, rng, { M: 50, C: 129, V: 257, R: 33, J: null, dtype: "f32" });
    await checkForward(rt, rng, { M: 9, C: 37, V: 131, R: 9, J: null, dtype: "bf16" });
  });

  test("needs J with cols", async () => {
    const rt = await gpuRuntime();
    const b = rt.pool.acquire(64);
    expect(() => lmHeadForward(rt, { logits: b, h: b, weight: b, rows: b, cols: b }, { R: 1, C: 1, M: 1, V: 1 })).toThrow(/give J/);
    rt.pool.release(b);
  });
});

describe("lm_head_backward", () => {
  test("accumulates into the chosen rows only, chosen and all columns, every weight dtype", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lm-head-backward");
    for (const dtype of ["f32", "bf16", "f16"] as const) {
      await checkBackward(rt, rng, { M: 20, C: 70, V: 300, R: 7, J: 33, dtype }, 1);
    }
    await checkBackward(rt, rng, { M: 50, C: 129, V: 257, R: 33, J: null, dtype: "f32" }, 1);
    await checkBackward(rt, rng, { M: 9, C: 37, V: 131, R: 9, J: 2, dtype: "f16" }, 1);
  });

  test("split-K over the columns gives the same gradient", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lm-head-backward-split");
    await checkBackward(rt, rng, { M: 50, C: 129, V: 300, R: 33, J: null, dtype: "bf16" }, 4);
    await checkBackward(rt, rng, { M: 20, C: 70, V: 300, R: 7, J: 41, dtype: "f32" }, 7); // trailing splits are empty
  });

  test("split heuristic fills the GPU for 32 rows x the GPT-2 vocabulary", () => {
    const s = lmHeadBackwardSplits({ R: 32, J: 50257, C: 1280 });
    expect(s).toBeGreaterThan(10);
    expect(lmHeadBackwardSplits({ R: 32, J: 2, C: 1280 })).toBe(1);
    expect(lmHeadBackwardScratchBytes({ R: 32, C: 1280, splits: s })).toBe(s * 32 * 1280 * 4);
  });

  test("reference and GPU gradients match central differences", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("lm-head-fd");
    const M = 6, C = 5, V = 11;
    const rows = Uint32Array.from([4, 1, 2]);
    for (const cols of [Uint32Array.from([3, 3, 10, 0]), null]) {
      const J = cols ? cols.length : V;
      const h = Float64Array.from(rng.normalF32(M * C));
      const w = Float64Array.from(rng.normalF32(V * C));
      const dlogits = Float64Array.from(rng.normalF32(rows.length * J));
      const loss = () => refForward(h, w, rows, cols, C, V).reduce((s, v, i) => s + v * dlogits[i], 0);
      const fd = new Float64Array(M * C);
      const eps = 1e-3;
      for (let i = 0; i < h.length; i++) {
        const old = h[i];
        h[i] = old + eps;
        const up = loss();
        h[i] = old - eps;
        const down = loss();
        h[i] = old;
        fd[i] = (up - down) / (2 * eps);
      }
      expectClose(refBackward(dlogits, w, rows, cols, M, C, V), fd, { rtol: 1e-7, atol: 1e-8, label: "ref dh vs fd" });
      const DL = rt.upload(Float32Array.from(dlogits)), W = rt.upload(Float32Array.from(w)), ROWS = rt.upload(rows);
      const COLS = cols ? rt.upload(cols) : undefined;
      const DH = rt.upload(new Float32Array(M * C));
      lmHeadBackward(rt, { dh: DH, dlogits: DL, weight: W, rows: ROWS, cols: COLS }, { R: rows.length, J, C, M, V });
      expectClose(await rt.readF32(DH, M * C), fd, { ...sumTol(J), label: "gpu dh vs fd" });
      release(rt, DL, W, ROWS, COLS, DH);
    }
  });
});
