// GELU (gelu_new) and SwiGLU kernels vs the float64 references of src/ref/activations.ts, and the
// reference backward vs central finite differences of the reference forward (loss = sum(out * dout)).
// Inputs: normal values with a non-zero mean plus an evenly spaced sweep out to +-30 (gelu) or
// +-100 (swiglu gate), where a naive tanh / exp overflows.
import { expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { geluBackward, geluForward, swigluBackward, swigluForward } from "../../src/ops/activations.ts";
import * as ref from "../../src/ref/activations.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

// element counts N*C for C in {1, 7, 64, 163, 1600, 4097}, N in {1, 5, 163} (elementwise: only the
// count matters), plus the sweep
const COUNTS = [1, 7, 5 * 64, 5 * 163, 163 * 163, 5 * 1600, 163 * 4097];
const F32_EPS = 2 ** -24;

/** normal(shift, scale) values, the first `sweep` of them replaced by an even sweep over [-range, range] */
function values(rng: Rng, n: number, scale: number, range: number): Float32Array {
  const shift = 0.3 + rng.normal() * 0.2;
  const x = rng.normalF32(n, scale).map((v) => v + shift);
  const sweep = Math.min(n, 601);
  for (let i = 0; i < sweep; i++) x[i] = sweep === 1 ? range : -range + (2 * range * i) / (sweep - 1);
  return x;
}

function plus(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function release(rt: Runtime, ...bufs: GpuBuffer[]): void {
  for (const b of bufs) rt.pool.release(b);
}

/**
 * Central differences of one element's loss out_i * dout_i with respect to x_i (elementwise ops),
 * at the sweep and at random indices, vs the analytic gradient `want`.
 */
function checkFiniteDiff(
  rng: Rng,
  x: ArrayLike<number>,
  want: ArrayLike<number>,
  loss: (i: number, xi: number) => number,
  label: string,
): void {
  const idx = [...Array.from({ length: Math.min(x.length, 601) }, (_, i) => i), ...Array.from({ length: 20 }, () => rng.int(x.length))];
  const fd: number[] = [];
  const an: number[] = [];
  for (const i of idx) {
    const h = 1e-6 * Math.max(1, Math.abs(x[i]));
    fd.push((loss(i, x[i] + h) - loss(i, x[i] - h)) / (2 * h));
    an.push(want[i]);
  }
  // float64: truncation ~h^2 |f'''|, roundoff ~1e-16 |f| / h
  expectClose(fd, an, { rtol: 1e-6, atol: 1e-7, label: `${label} finite differences` });
}

test("gelu_forward and gelu_backward match the float64 reference out to |x| = 30; backward written and accumulated", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("gelu");
  for (const N of COUNTS) {
    const x = values(rng, N, 2, 30);
    const dout = rng.normalF32(N);
    const want = ref.geluForward(x);
    const wantD = ref.geluBackward(x, dout);
    checkFiniteDiff(rng, x, wantD, (i, xi) => ref.geluForward([xi])[0] * dout[i], `gelu N=${N}`);

    const X = rt.upload(x), D = rt.upload(dout), out = rt.pool.acquire(N * 4);
    const dinp0 = rng.normalF32(N);
    const dinp = rt.upload(rng.normalF32(N));
    geluForward(rt, { out, inp: X }, { N });
    const got = await rt.readF32(out, N);
    expect(got.every(Number.isFinite)).toBe(true);
    // the kernel's x / (1 + exp(-2u)) is relatively accurate (a few ulp of exp); the reference's
    // literal tanh form is not where 1 + tanh(u) cancels (x < -5): there it is exact only to an
    // absolute ~1e-16 * |x| (and 0 below x = -7), hence the absolute floor
    expectClose(got, want, { rtol: 1e-5, atol: 1e-14, label: `gelu out N=${N}` });

    geluBackward(rt, { dinp, inp: X, dout: D }, { N });
    const gotD = await rt.readF32(dinp, N);
    expect(gotD.every(Number.isFinite)).toBe(true);
    // gelu'(x) = s + x * slope has a zero near x = -0.75 where its two terms cancel: absolute
    // error there ~ eps * |x * slope| * |dout| (<= 1.2 * |dout|)
    const atol = 8 * F32_EPS * maxAbs(dout);
    expectClose(gotD, wantD, { rtol: 1e-5, atol, label: `gelu dinp N=${N}` });

    rt.write(dinp, dinp0);
    geluBackward(rt, { dinp, inp: X, dout: D }, { N, accumulate: true });
    expectClose(await rt.readF32(dinp, N), plus(dinp0, wantD), { rtol: 1e-5, atol: atol + 2 * F32_EPS * maxAbs(dinp0), label: `gelu dinp += N=${N}` });
    release(rt, X, D, out, dinp);
  }
});

test("swiglu_forward and swiglu_backward match the float64 reference out to |gate| = 100; backward written and accumulated", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("swiglu");
  for (const N of COUNTS) {
    const gate = values(rng, N, 3, 100);
    const up = rng.normalF32(N, 1.5).map((v) => v - 0.4);
    const dout = rng.normalF32(N);
    const want = ref.swigluForward(gate, up);
    const wantD = ref.swigluBackward(gate, up, dout);
    checkFiniteDiff(rng, gate, wantD.dgate, (i, g) => ref.swigluForward([g], [up[i]])[0] * dout[i], `swiglu dgate N=${N}`);
    checkFiniteDiff(rng, up, wantD.dup, (i, u) => ref.swigluForward([gate[i]], [u])[0] * dout[i], `swiglu dup N=${N}`);

    const G = rt.upload(gate), U = rt.upload(up), D = rt.upload(dout), out = rt.pool.acquire(N * 4);
    const dgate0 = rng.normalF32(N), dup0 = rng.normalF32(N);
    const dgate = rt.upload(rng.normalF32(N)), dup = rt.upload(rng.normalF32(N));
    swigluForward(rt, { out, gate: G, up: U }, { N });
    const got = await rt.readF32(out, N);
    expect(got.every(Number.isFinite)).toBe(true);
    // g / (1 + exp(-g)) is relatively accurate to a few ulp of exp(-g), i.e. ~|g| * eps: that
    // exceeds 1e-5 only for g << -20, where |silu(g)| < 1e-8 and the absolute floor takes over
    const floor = 1e-10 * maxAbs(up) * maxAbs(dout);
    expectClose(got, want, { rtol: 1e-5, atol: floor, label: `swiglu out N=${N}` });

    swigluBackward(rt, { dgate, dup, gate: G, up: U, dout: D }, { N });
    const gotG = await rt.readF32(dgate, N), gotU = await rt.readF32(dup, N);
    expect(gotG.every(Number.isFinite) && gotU.every(Number.isFinite)).toBe(true);
    // silu'(g) = s (1 + g (1 - s)) has a zero near g = -1.28 where 1 + g (1 - s) cancels:
    // absolute error there ~ eps * |g| * |up * dout|
    const atol = 16 * F32_EPS * maxAbs(up) * maxAbs(dout);
    expectClose(gotG, wantD.dgate, { rtol: 1e-5, atol, label: `swiglu dgate N=${N}` });
    expectClose(gotU, wantD.dup, { rtol: 1e-5, atol: floor, label: `swiglu dup N=${N}` });

    rt.write(dgate, dgate0);
    rt.write(dup, dup0);
    swigluBackward(rt, { dgate, dup, gate: G, up: U, dout: D }, { N, accumulate: true });
    const acc = 2 * F32_EPS * Math.max(maxAbs(dgate0), maxAbs(dup0));
    expectClose(await rt.readF32(dgate, N), plus(dgate0, wantD.dgate), { rtol: 1e-5, atol: atol + acc, label: `swiglu dgate += N=${N}` });
    expectClose(await rt.readF32(dup, N), plus(dup0, wantD.dup), { rtol: 1e-5, atol: floor + acc, label: `swiglu dup += N=${N}` });
    release(rt, G, U, D, out, dgate, dup);
  }
});

test("elementwise activations cover more than 65535 workgroups (2-D grid)", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("activations-big");
  const N = 65536 * 256 + 77; // 65537 workgroups of 256
  // a random block tiled over N (drawing N normals in JS is slow), distinct per buffer
  const tile = (scale: number) => {
    const block = rng.normalF32(4099, scale);
    return Float32Array.from({ length: N }, (_, i) => block[i % 4099]);
  };
  const a = tile(2), b = tile(1), dout = tile(1);
  const A = rt.upload(a), B = rt.upload(b), D = rt.upload(dout);
  const o1 = rt.pool.acquire(N * 4), o2 = rt.pool.acquire(N * 4);
  const idx = [0, 1, 255, 256, 65535 * 256 - 1, 65535 * 256, 65535 * 256 + 3, N - 78, N - 2, N - 1];
  const pick = (arr: ArrayLike<number>) => idx.map((i) => arr[i]);
  const check = async (buf: GpuBuffer, want: ArrayLike<number>, label: string) => {
    const got = await rt.readF32(buf, N);
    expectClose(pick(got), want, { rtol: 1e-5, atol: 1e-6, label });
  };
  const [ai, bi, di] = [pick(a), pick(b), pick(dout)];

  geluForward(rt, { out: o1, inp: A }, { N });
  await check(o1, ref.geluForward(ai), "gelu out");
  geluBackward(rt, { dinp: o1, inp: A, dout: D }, { N });
  await check(o1, ref.geluBackward(ai, di), "gelu dinp");
  swigluForward(rt, { out: o1, gate: A, up: B }, { N });
  await check(o1, ref.swigluForward(ai, bi), "swiglu out");
  swigluBackward(rt, { dgate: o1, dup: o2, gate: A, up: B, dout: D }, { N });
  const wantD = ref.swigluBackward(ai, bi, di);
  await check(o1, wantD.dgate, "swiglu dgate");
  await check(o2, wantD.dup, "swiglu dup");
  release(rt, A, B, D, o1, o2);
});

test("each elementwise kernel indexes any 2-D grid as i = gid.x + gid.y * num_workgroups.x * 256", async () => {
  // a 3 x 5 grid directly (the wrappers only go 2-D past 65535 workgroups): a wrong row stride
  // leaves holes in the NaN-filled outputs or writes past N
  const rt = await gpuRuntime();
  const rng = testRng("activations-grid");
  const N = 15 * 256 - 10;
  const a = rng.normalF32(N, 2), b = rng.normalF32(N), dout = rng.normalF32(N);
  const A = rt.upload(a), B = rt.upload(b), D = rt.upload(dout);
  const nan = new Float32Array(N + 10).fill(NaN);
  const o1 = rt.upload(nan), o2 = rt.upload(nan);
  const run = async (kernel: string, params: Record<string, number>, bind: Record<string, GpuBuffer>, outs: [GpuBuffer, ArrayLike<number>][]) => {
    rt.write(o1, nan);
    rt.write(o2, nan);
    rt.dispatch(kernel, { params, bind, workgroups: [3, 5] });
    for (const [buf, want] of outs) {
      const got = await rt.readF32(buf, N + 10);
      expectClose(got.subarray(0, N), want, { rtol: 1e-5, atol: 1e-6, label: kernel });
      expect(got.subarray(N).every(Number.isNaN)).toBe(true); // nothing written past N
    }
  };
  const wantD = ref.swigluBackward(a, b, dout);
  await run("gelu_forward", { N }, { inp: A, out: o1 }, [[o1, ref.geluForward(a)]]);
  await run("gelu_backward", { N, accumulate: 0 }, { inp: A, dout: D, dinp: o1 }, [[o1, ref.geluBackward(a, dout)]]);
  await run("swiglu_forward", { N }, { gate: A, up: B, out: o1 }, [[o1, ref.swigluForward(a, b)]]);
  await run("swiglu_backward", { N, accumulate: 0 }, { gate: A, up: B, dout: D, dgate: o1, dup: o2 }, [[o1, wantD.dgate], [o2, wantD.dup]]);
  release(rt, A, B, D, o1, o2);
});
