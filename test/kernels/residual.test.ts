import { expect, test } from "bun:test";
import { residualForward } from "../../src/ops/residual.ts";
import { residualForward as residualRef } from "../../src/ref/residual.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

test("residual_forward matches the float64 reference at awkward sizes", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("residual");
  for (const N of [1, 7, 163, 1000, 66_001]) {
    const a = rng.normalF32(N), b = rng.normalF32(N);
    const A = rt.upload(a), B = rt.upload(b), out = rt.pool.acquire(N * 4);
    residualForward(rt, out, A, B, N);
    expectClose(await rt.readF32(out, N), residualRef(a, b), { rtol: 1e-6, label: `N=${N}` });
    for (const x of [A, B, out]) rt.pool.release(x);
  }
});

test("a 2-D grid covers more than 65535 workgroups", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("residual-big");
  const N = 65536 * 256 + 77; // 65537 workgroups of 256
  const a = rng.normalF32(N), b = rng.normalF32(N);
  const A = rt.upload(a), B = rt.upload(b), out = rt.pool.acquire(N * 4);
  residualForward(rt, out, A, B, N);
  const got = await rt.readF32(out, N);
  for (const i of [0, 1, N - 1, N - 78, 65535 * 256 + 3]) expect(got[i]).toBeCloseTo(a[i] + b[i], 5);
  for (const x of [A, B, out]) rt.pool.release(x);
});
