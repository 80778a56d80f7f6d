// LayerNorm and RMSNorm kernels vs the float64 references of src/ref/norms.ts, and the reference
// backward vs central finite differences of the reference forward (loss = sum(out * dout)).
// Inputs: rows with non-zero, row-dependent mean and scale; random weights and biases.
import { expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from "../../src/ops/norms.ts";
import * as ref from "../../src/ref/norms.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const CS = [1, 7, 64, 163, 1600, 4097];
const NS = [1, 5, 163];
const F32_EPS = 2 ** -24; // unit roundoff of f32
const LN_EPS = 1e-5; // GPT-2
const RMS_EPS = 1e-6; // Llama-2 / Qwen2

/** (N, C) rows x = mu_r + sigma_r * normal, with mu_r in about [-2.5, 3.5] and sigma_r in [0.3, 2.3]. */
function rows(rng: Rng, N: number, C: number): Float32Array {
  const x = new Float32Array(N * C);
  for (let r = 0; r < N; r++) {
    const mu = 0.5 + rng.normal();
    const sigma = 0.3 + 2 * rng.next();
    for (let c = 0; c < C; c++) x[r * C + c] = mu + sigma * rng.normal();
  }
  return x;
}

/** weights around 0.3 with spread 0.8 (never all ones), biases normal (never zero). */
function params(rng: Rng, C: number): { w: Float32Array; bias: Float32Array } {
  const w = rng.normalF32(C, 0.8).map((v) => v + 0.3);
  return { w, bias: rng.normalF32(C) };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function plus(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

function release(rt: Runtime, ...bufs: GpuBuffer[]): void {
  for (const b of bufs) rt.pool.release(b);
}

/**
 * Central differences of loss(x) at `count` random indices of x (float64, modified in place and
 * restored). Compares them with the analytic gradient `want` at those indices.
 */
function checkFiniteDiff(
  rng: Rng,
  x: Float64Array,
  want: ArrayLike<number>,
  loss: (i: number) => number,
  label: string,
  { count = 6, step = 1e-6 }: { count?: number; step?: number } = {},
): void {
  const idx = [0, x.length - 1, ...Array.from({ length: count }, () => rng.int(x.length))];
  const fd: number[] = [];
  const an: number[] = [];
  for (const i of idx) {
    const v = x[i];
    const h = step * Math.max(1, Math.abs(v));
    x[i] = v + h;
    const up = loss(i);
    x[i] = v - h;
    const down = loss(i);
    x[i] = v;
    fd.push((up - down) / (2 * h));
    an.push(want[i]);
  }
  // float64 central differences: truncation ~(h / scale)^2 relative, where the scale of a row can
  // be as small as sqrt(eps) = 1e-3 (rmsnorm, C = 1, x near 0), hence h = 1e-6 for inputs; roundoff
  // ~1e-16 |loss| / h. The loss is linear in weight and bias: a larger step there.
  expectClose(fd, an, { rtol: 1e-5, atol: 1e-6, label: `${label} finite differences` });
}

/**
 * out = (x - mean) * rstd * w + b: the f32 mean of C values carries an absolute error of about
 * sqrt(C) * eps * max|x|, which rstd * |w| scales into out; where out is near zero (w * norm
 * cancels b) only an absolute tolerance of that size can hold.
 */
function layernormOutAtol(x: ArrayLike<number>, w: ArrayLike<number>, want: { out: ArrayLike<number>; rstd: ArrayLike<number> }, C: number): number {
  return 4 * Math.sqrt(C) * F32_EPS * maxAbs(x) * maxAbs(want.rstd) * maxAbs(w) + 4 * F32_EPS * maxAbs(want.out);
}

/** max |(x - mean) * rstd| over all rows */
function maxNorm(x: ArrayLike<number>, mean: ArrayLike<number> | null, rstd: ArrayLike<number>, N: number, C: number): number {
  let m = 0;
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < C; c++) m = Math.max(m, Math.abs((x[r * C + c] - (mean ? mean[r] : 0)) * rstd[r]));
  }
  return m;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i] * b[i];
  return s;
}

test("layernorm_forward matches the float64 reference; saved mean/rstd too; no-save gives the same out", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("layernorm_forward");
  for (const N of NS) {
    for (const C of CS) {
      const x = rows(rng, N, C);
      const { w, bias } = params(rng, C);
      const want = ref.layernormForward(x, w, bias, N, C, LN_EPS);
      const X = rt.upload(x), W = rt.upload(w), Bi = rt.upload(bias);
      const out = rt.pool.acquire(N * C * 4), out2 = rt.pool.acquire(N * C * 4);
      const mean = rt.upload(rng.normalF32(N)), rstd = rt.upload(rng.normalF32(N));
      layernormForward(rt, { out, inp: X, weight: W, bias: Bi, mean, rstd }, { N, C, eps: LN_EPS });
      layernormForward(rt, { out: out2, inp: X, weight: W, bias: Bi }, { N, C, eps: LN_EPS });
      const got = await rt.readF32(out, N * C);
      expectClose(got, want.out, { rtol: 1e-5, atol: layernormOutAtol(x, w, want, C), label: `layernorm out N=${N} C=${C}` });
      expectClose(await rt.readF32(mean, N), want.mean, { rtol: 1e-5, atol: Math.sqrt(C) * F32_EPS * maxAbs(x), label: `mean N=${N} C=${C}` });
      expectClose(await rt.readF32(rstd, N), want.rstd, { rtol: 1e-5, label: `rstd N=${N} C=${C}` });
      expect(await rt.readF32(out2, N * C)).toEqual(got);
      release(rt, X, W, Bi, out, out2, mean, rstd);
    }
  }
});

test("layernorm_backward matches the reference (written and accumulated), which matches finite differences", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("layernorm_backward");
  for (const N of NS) {
    for (const C of CS) {
      const x = rows(rng, N, C);
      const { w, bias } = params(rng, C);
      const dout = rng.normalF32(N * C);
      const fwd = ref.layernormForward(x, w, bias, N, C, LN_EPS);
      const want = ref.layernormBackward(dout, x, w, fwd.mean, fwd.rstd, N, C);

      // the reference backward vs finite differences of the reference forward
      const x64 = Float64Array.from(x), w64 = Float64Array.from(w), b64 = Float64Array.from(bias);
      const rowLoss = (i: number) => {
        const r = Math.floor(i / C);
        const o = ref.layernormForward(x64.subarray(r * C, (r + 1) * C), w64, b64, 1, C, LN_EPS).out;
        return dot(o, dout.subarray(r * C, (r + 1) * C), 0, C);
      };
      const fullLoss = () => dot(ref.layernormForward(x64, w64, b64, N, C, LN_EPS).out, dout, 0, N * C);
      checkFiniteDiff(rng, x64, want.dinp, rowLoss, `layernorm dinp N=${N} C=${C}`);
      checkFiniteDiff(rng, w64, want.dweight, fullLoss, `layernorm dweight N=${N} C=${C}`, { count: 3, step: 1e-3 });
      checkFiniteDiff(rng, b64, want.dbias, fullLoss, `layernorm dbias N=${N} C=${C}`, { count: 3, step: 1e-3 });

      // GPU: dinp written, dweight / dbias accumulated onto random contents
      const X = rt.upload(x), W = rt.upload(w), D = rt.upload(dout);
      const M = rt.upload(Float32Array.from(fwd.mean)), R = rt.upload(Float32Array.from(fwd.rstd));
      const dw0 = rng.normalF32(C), db0 = rng.normalF32(C), dinp0 = rng.normalF32(N * C);
      const dinp = rt.upload(rng.normalF32(N * C)), dweight = rt.upload(dw0), dbias = rt.upload(db0);
      const bufs = { dinp, dout: D, inp: X, weight: W, mean: M, rstd: R };
      layernormBackward(rt, { ...bufs, dweight, dbias }, { N, C });
      // dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)): the f32 row means carry
      // absolute errors of about sqrt(C) * eps * max|dnorm| * (1 + max|norm|), which norm and rstd
      // scale; where the three terms cancel only an absolute tolerance of that size can hold.
      const dn = maxAbs(dout) * maxAbs(w);
      const rs = maxAbs(fwd.rstd);
      const nm = maxNorm(x, fwd.mean, fwd.rstd, N, C);
      const atolDinp = 4 * Math.sqrt(C) * F32_EPS * rs * dn * (1 + nm) * (1 + nm);
      expectClose(await rt.readF32(dinp, N * C), want.dinp, { rtol: 1e-5, atol: atolDinp, label: `dinp N=${N} C=${C}` });
      // dweight, dbias: f32 sums over N rows (of dout * norm, dout) that may cancel: absolute
      // error ~ sqrt(N) * eps * max term, plus the rounding of the random contents added to
      const atolW = 4 * Math.sqrt(N) * F32_EPS * maxAbs(dout) * (1 + nm) + 2 * F32_EPS * maxAbs(dw0);
      expectClose(await rt.readF32(dweight, C), plus(dw0, want.dweight), { rtol: 1e-5, atol: atolW, label: `dweight N=${N} C=${C}` });
      expectClose(await rt.readF32(dbias, C), plus(db0, want.dbias), { rtol: 1e-5, atol: atolW, label: `dbias N=${N} C=${C}` });

      // GPU: dinp accumulated onto random contents, without parameter gradients
      rt.write(dinp, dinp0);
      layernormBackward(rt, bufs, { N, C, accumulate: true });
      expectClose(await rt.readF32(dinp, N * C), plus(dinp0, want.dinp), { rtol: 1e-5, atol: atolDinp + 2 * F32_EPS * maxAbs(dinp0), label: `dinp += N=${N} C=${C}` });
      // the parameter gradients were left alone
      expectClose(await rt.readF32(dweight, C), plus(dw0, want.dweight), { rtol: 1e-5, atol: atolW, label: `dweight untouched N=${N} C=${C}` });
      release(rt, X, W, D, M, R, dinp, dweight, dbias);
    }
  }
});

test("rmsnorm_forward matches the float64 reference; saved rstd too; no-save gives the same out", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("rmsnorm_forward");
  for (const N of NS) {
    for (const C of CS) {
      const x = rows(rng, N, C);
      const { w } = params(rng, C);
      const want = ref.rmsnormForward(x, w, N, C, RMS_EPS);
      const X = rt.upload(x), W = rt.upload(w);
      const out = rt.pool.acquire(N * C * 4), out2 = rt.pool.acquire(N * C * 4);
      const rstd = rt.upload(rng.normalF32(N));
      rmsnormForward(rt, { out, inp: X, weight: W, rstd }, { N, C, eps: RMS_EPS });
      rmsnormForward(rt, { out: out2, inp: X, weight: W }, { N, C, eps: RMS_EPS });
      const got = await rt.readF32(out, N * C);
      // a product of a few correctly rounded factors and a sum of squares: relative error only
      expectClose(got, want.out, { rtol: 1e-5, atol: 0, label: `rmsnorm out N=${N} C=${C}` });
      expectClose(await rt.readF32(rstd, N), want.rstd, { rtol: 1e-5, atol: 0, label: `rstd N=${N} C=${C}` });
      expect(await rt.readF32(out2, N * C)).toEqual(got);
      release(rt, X, W, out, out2, rstd);
    }
  }
});

test("rmsnorm_backward matches the reference (written and accumulated), which matches finite differences", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("rmsnorm_backward");
  for (const N of NS) {
    for (const C of CS) {
      const x = rows(rng, N, C);
      const { w } = params(rng, C);
      const dout = rng.normalF32(N * C);
      const fwd = ref.rmsnormForward(x, w, N, C, RMS_EPS);
      const want = ref.rmsnormBackward(dout, x, w, fwd.rstd, N, C);

      const x64 = Float64Array.from(x), w64 = Float64Array.from(w);
      const rowLoss = (i: number) => {
        const r = Math.floor(i / C);
        const o = ref.rmsnormForward(x64.subarray(r * C, (r + 1) * C), w64, 1, C, RMS_EPS).out;
        return dot(o, dout.subarray(r * C, (r + 1) * C), 0, C);
      };
      const fullLoss = () => dot(ref.rmsnormForward(x64, w64, N, C, RMS_EPS).out, dout, 0, N * C);
      checkFiniteDiff(rng, x64, want.dinp, rowLoss, `rmsnorm dinp N=${N} C=${C}`);
      checkFiniteDiff(rng, w64, want.dweight, fullLoss, `rmsnorm dweight N=${N} C=${C}`, { count: 3, step: 1e-3 });

      const X = rt.upload(x), W = rt.upload(w), D = rt.upload(dout), R = rt.upload(Float32Array.from(fwd.rstd));
      const dw0 = rng.normalF32(C), dinp0 = rng.normalF32(N * C);
      const dinp = rt.upload(rng.normalF32(N * C)), dweight = rt.upload(dw0);
      const bufs = { dinp, dout: D, inp: X, weight: W, rstd: R };
      rmsnormBackward(rt, { ...bufs, dweight }, { N, C });
      // dinp = rstd * (dnorm - norm * mean(dnorm * norm)): the two terms may cancel, and the f32
      // row mean has an absolute error of about sqrt(C) * eps * max|dnorm * norm|
      const dn = maxAbs(dout) * maxAbs(w);
      const rs = maxAbs(fwd.rstd);
      const nm = maxNorm(x, null, fwd.rstd, N, C);
      const atolDinp = 4 * Math.sqrt(C) * F32_EPS * rs * dn * (1 + nm * nm);
      expectClose(await rt.readF32(dinp, N * C), want.dinp, { rtol: 1e-5, atol: atolDinp, label: `dinp N=${N} C=${C}` });
      // dweight: an f32 sum over N rows of dout * norm that may cancel (see layernorm)
      const atolW = 4 * Math.sqrt(N) * F32_EPS * maxAbs(dout) * nm + 2 * F32_EPS * maxAbs(dw0);
      expectClose(await rt.readF32(dweight, C), plus(dw0, want.dweight), { rtol: 1e-5, atol: atolW, label: `dweight N=${N} C=${C}` });

      rt.write(dinp, dinp0);
      rmsnormBackward(rt, bufs, { N, C, accumulate: true });
      expectClose(await rt.readF32(dinp, N * C), plus(dinp0, want.dinp), { rtol: 1e-5, atol: atolDinp + 2 * F32_EPS * maxAbs(dinp0), label: `dinp += N=${N} C=${C}` });
      expectClose(await rt.readF32(dweight, C), plus(dw0, want.dweight), { rtol: 1e-5, atol: atolW, label: `dweight untouched N=${N} C=${C}` });
      release(rt, X, W, D, R, dinp, dweight);
    }
  }
});

test("norms handle more than 65535 rows (2-D grid of rows)", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("norms-many-rows");
  const N = 65535 + 70, C = 3;
  const x = rows(rng, N, C);
  const { w, bias } = params(rng, C);
  const X = rt.upload(x), W = rt.upload(w), Bi = rt.upload(bias), out = rt.pool.acquire(N * C * 4);
  const mean = rt.pool.acquire(N * 4), rstd = rt.pool.acquire(N * 4);
  layernormForward(rt, { out, inp: X, weight: W, bias: Bi, mean, rstd }, { N, C, eps: LN_EPS });
  const want = ref.layernormForward(x, w, bias, N, C, LN_EPS);
  expectClose(await rt.readF32(out, N * C), want.out, { rtol: 1e-5, atol: layernormOutAtol(x, w, want, C), label: "layernorm many rows" });
  expectClose(await rt.readF32(rstd, N), want.rstd, { rtol: 1e-5, atol: 0, label: "layernorm rstd many rows" });
  rmsnormForward(rt, { out, inp: X, weight: W, rstd }, { N, C, eps: RMS_EPS });
  const wantRms = ref.rmsnormForward(x, w, N, C, RMS_EPS);
  expectClose(await rt.readF32(out, N * C), wantRms.out, { rtol: 1e-5, atol: 0, label: "rmsnorm many rows" });
  expectClose(await rt.readF32(rstd, N), wantRms.rstd, { rtol: 1e-5, atol: 0, label: "rmsnorm rstd many rows" });
  release(rt, X, W, Bi, out, mean, rstd);
});

test("row kernels index any 2-D grid of rows as row = wg.x + wg.y * num_workgroups.x", async () => {
  // a 3 x 4 grid directly (the wrappers only go 2-D past 65535 rows): a wrong row stride leaves
  // NaN rows in the outputs or writes past N
  const rt = await gpuRuntime();
  const rng = testRng("norms-grid");
  const N = 11, C = 37;
  const x = rows(rng, N, C);
  const { w, bias } = params(rng, C);
  const dout = rng.normalF32(N * C);
  const X = rt.upload(x), W = rt.upload(w), Bi = rt.upload(bias), D = rt.upload(dout);
  const nan = (n: number) => new Float32Array(n).fill(NaN);
  const out = rt.upload(nan(N * C + 64)), mean = rt.upload(nan(N + 8)), rstd = rt.upload(nan(N + 8));
  const spare = [0, 1, 2].map(() => rt.upload(nan(64)));
  const wg: [number, number] = [3, 4];
  const readOut = async (label: string, want: ArrayLike<number>) => {
    const got = await rt.readF32(out, N * C + 64);
    expectClose(got.subarray(0, N * C), want, { rtol: 1e-4, atol: 1e-4, label });
    expect(got.subarray(N * C).every(Number.isNaN)).toBe(true);
  };

  const ln = ref.layernormForward(x, w, bias, N, C, LN_EPS);
  rt.dispatch("layernorm_forward", { params: { N, C, eps: LN_EPS, save: 1 }, bind: { inp: X, weight: W, bias: Bi, out, mean, rstd }, workgroups: wg });
  await readOut("layernorm_forward", ln.out);
  expectClose((await rt.readF32(rstd, N + 8)).subarray(0, N), ln.rstd, { rtol: 1e-4, label: "layernorm rstd" });
  rt.write(out, nan(N * C + 64));
  const lnb = ref.layernormBackward(dout, x, w, ln.mean, ln.rstd, N, C);
  const lnParams = { N, C, accumulate: 0, rowsPerChunk: N, nChunks: 1 };
  rt.dispatch("layernorm_backward", {
    params: lnParams,
    bind: { dout: D, inp: X, weight: W, mean, rstd, dinp: out, dweight: spare[0], dbias: spare[1], scratch: spare[2] },
    workgroups: wg,
  });
  await readOut("layernorm_backward", lnb.dinp);

  rt.write(out, nan(N * C + 64));
  const rms = ref.rmsnormForward(x, w, N, C, RMS_EPS);
  rt.dispatch("rmsnorm_forward", { params: { N, C, eps: RMS_EPS, save: 1 }, bind: { inp: X, weight: W, out, rstd }, workgroups: wg });
  await readOut("rmsnorm_forward", rms.out);
  rt.write(out, nan(N * C + 64));
  const rmsb = ref.rmsnormBackward(dout, x, w, rms.rstd, N, C);
  rt.dispatch("rmsnorm_backward", {
    params: lnParams,
    bind: { dout: D, inp: X, weight: W, rstd, dinp: out, dweight: spare[0], scratch: spare[1] },
    workgroups: wg,
  });
  await readOut("rmsnorm_backward", rmsb.dinp);
  release(rt, X, W, Bi, D, out, mean, rstd, ...spare);
});
