import { expect, test } from "bun:test";
import { axpy, scaleInto } from "../../src/ops/axpy.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

// float64 references: a is rounded to f32 first, as the kernel receives it
function axpyRef(y: Float32Array, x: Float32Array, a: number): Float64Array {
  const af = Math.fround(a);
  return Float64Array.from(y, (yi, i) => yi + af * x[i]);
}
function scaleRef(x: Float32Array, a: number): Float64Array {
  const af = Math.fround(a);
  return Float64Array.from(x, (xi) => af * xi);
}

// y + a·x may cancel: allow one ulp of the largest |a·x| + |y| (whether or not the driver fuses the fma)
function cancelAtol(y: Float32Array, x: Float32Array, a: number): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(a * x[i]) + Math.abs(y[i]));
  return 2 ** -23 * m;
}

test("axpy (y += a·x) and scale (y = a·x) match the float64 reference at awkward sizes", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("axpy");
  for (const N of [1, 7, 163, 1000, 66_001]) {
    const x = rng.normalF32(N), y = rng.normalF32(N);
    const a = rng.normal() * 3;
    const X = rt.upload(x), Y = rt.upload(y), Z = rt.upload(y);
    axpy(rt, Y, X, a, N);
    expectClose(await rt.readF32(Y, N), axpyRef(y, x, a), { rtol: 1e-6, atol: cancelAtol(y, x, a), label: `axpy N=${N}` });
    scaleInto(rt, Z, X, a, N);
    expectClose(await rt.readF32(Z, N), scaleRef(x, a), { rtol: 1e-6, atol: 0, label: `scale N=${N}` });
    // accumulating twice: y + a·x + a·x
    rt.write(Y, y);
    axpy(rt, Y, X, a, N);
    axpy(rt, Y, X, a, N);
    const twice = axpyRef(Float32Array.from(axpyRef(y, x, a)), x, a);
    expectClose(await rt.readF32(Y, N), twice, { rtol: 1e-6, atol: 2 * cancelAtol(y, x, 2 * a), label: `axpy twice N=${N}` });
    for (const b of [X, Y, Z]) rt.pool.release(b);
  }
});

test("axpy covers a 2-D grid of more than 65535 workgroups and leaves the tail alone", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("axpy-big");
  const N = 65536 * 256 + 77;
  const x = rng.normalF32(N), y = rng.normalF32(N + 256); // 256 floats past N must stay
  const a = -0.75;
  const X = rt.upload(x), Y = rt.upload(y);
  axpy(rt, Y, X, a, N);
  const got = await rt.readF32(Y, N + 256);
  expectClose(got.subarray(0, N), axpyRef(y.subarray(0, N), x, a), { rtol: 1e-6, atol: cancelAtol(y.subarray(0, N), x, a), label: "axpy 2-D" });
  expect(Array.from(got.subarray(N))).toEqual(Array.from(y.subarray(N)));
  for (const b of [X, Y]) rt.pool.release(b);
});
