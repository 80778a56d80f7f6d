import { expect, test } from "bun:test";
import { ADAM_DEFAULTS, adamUpdate, type AdamConfig } from "../../src/ops/adam.ts";
import { adamUpdate as adamRef } from "../../src/ref/adam.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

// Parameters are drawn at GPT-2's init scale (0.02) so that an update of size ~lr is a visible
// fraction of the parameter, and the update itself (param_t − param_0) is compared separately.
const CONFIGS: { cfg: AdamConfig; gradScale: number }[] = [
  { cfg: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, gradScale: 1 / 32 },
  { cfg: ADAM_DEFAULTS, gradScale: 1 },
  { cfg: { lr: 3e-2, beta1: 0.8, beta2: 0.95, eps: 1e-3 }, gradScale: 0.5 }, // eps comparable to sqrt(v)
];

test("adam_update follows the float64 PyTorch Adam for steps t = 1..5", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("adam");
  for (const N of [1, 7, 163, 100_003]) {
    for (const { cfg, gradScale } of CONFIGS) {
      const p0 = rng.normalF32(N, 0.02);
      const P = rt.upload(p0), M = rt.upload(new Float32Array(N)), Vb = rt.upload(new Float32Array(N));
      const G = rt.pool.acquire(N * 4);
      const p = Float64Array.from(p0), m = new Float64Array(N), v = new Float64Array(N);
      let gmax = 0;
      for (let t = 1; t <= 5; t++) {
        const g = rng.normalF32(N, 0.5);
        for (const x of g) gmax = Math.max(gmax, Math.abs(x * gradScale));
        rt.write(G, g);
        adamUpdate(rt, { param: P, grad: G, m: M, v: Vb }, N, t, cfg, gradScale);
        adamRef(p, g, m, v, t, cfg, gradScale);
        const label = `N=${N} lr=${cfg.lr} t=${t}`;
        const gotP = await rt.readF32(P, N);
        // m can cancel to near 0: absolute error a few ulps of the largest |g| seen
        expectClose(await rt.readF32(M, N), m, { rtol: 1e-5, atol: 1e-6 * gmax, label: `m ${label}` });
        expectClose(await rt.readF32(Vb, N), v, { rtol: 1e-5, atol: 1e-12, label: `v ${label}` });
        // the f32 parameter is rounded once per step: t half-ulps of max|param| <= 0.1 + t·lr;
        // a parameter that crossed 0 shows it as a large relative error, hence the atol
        const atol = t * 2 ** -24 * (0.1 + t * cfg.lr);
        expectClose(gotP, p, { rtol: 1e-5, atol, label: `param ${label}` });
        // the update alone (param_t − param_0)
        const dGot = Float64Array.from(gotP, (x, i) => x - p0[i]);
        const dWant = Float64Array.from(p, (x, i) => x - p0[i]);
        expectClose(dGot, dWant, { rtol: 1e-5, atol, label: `update ${label}` });
      }
      for (const b of [P, M, Vb, G]) rt.pool.release(b);
    }
  }
});

test("adamUpdate refuses a step count below 1", async () => {
  const rt = await gpuRuntime();
  const b = rt.pool.acquire(16);
  expect(() => adamUpdate(rt, { param: b, grad: b, m: b, v: b }, 4, 0, ADAM_DEFAULTS)).toThrow(/step t/);
  rt.pool.release(b);
});
