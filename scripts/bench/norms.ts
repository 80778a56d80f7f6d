// Benchmark cases for the normalisation and activation kernels: layernorm, rmsnorm (forward, and
// backward as the residual stream uses it: dinp accumulated, no parameter gradients; one case with
// them), gelu, swiglu. All memory-bound: `bytes` is what one run moves (each row's re-reads hit
// the caches and are not counted). Each setup() first checks the op on a small input against
// src/ref (throwing on a mismatch), then fills the timed inputs by tiling a block of random values.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { geluBackward, geluForward, swigluBackward, swigluForward } from "../../src/ops/activations.ts";
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from "../../src/ops/norms.ts";
import * as actRef from "../../src/ref/activations.ts";
import * as normRef from "../../src/ref/norms.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";
import { repeatTile, TILE } from "../lib/bench_inputs.ts";

const EPS = 1e-5;

function check(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-4): void {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + 1e-4 * Math.abs(want[i]))) throw new Error(`${what}: [${i}] got ${got[i]} want ${want[i]}`);
  }
}

/** An exact-size buffer of n floats holding a random block (mean `shift`) repeated. */
function tiled(rt: Runtime, rng: Rng, n: number, label: string, shift = 0): GpuBuffer {
  return repeatTile(rt, n, rng.normalF32(Math.min(n, TILE)).map((v) => v + shift), label);
}

/** Runs layernorm or rmsnorm forward and backward (with parameter gradients) at N=5, C=163 against src/ref. */
async function checkNorm(rt: Runtime, kind: "layernorm" | "rmsnorm"): Promise<void> {
  const rng = new Rng(7);
  const N = 5, C = 163;
  const x = rng.normalF32(N * C).map((v) => v + 0.7), w = rng.normalF32(C), bias = rng.normalF32(C), dout = rng.normalF32(N * C);
  const X = rt.upload(x), W = rt.upload(w), Bi = rt.upload(bias), D = rt.upload(dout);
  const out = rt.pool.acquire(N * C * 4), dinp = rt.pool.acquire(N * C * 4);
  const mean = rt.pool.acquire(N * 4), rstd = rt.pool.acquire(N * 4);
  const dweight = rt.upload(new Float32Array(C)), dbias = rt.upload(new Float32Array(C));
  if (kind === "layernorm") {
    const f = normRef.layernormForward(x, w, bias, N, C, EPS);
    const g = normRef.layernormBackward(dout, x, w, f.mean, f.rstd, N, C);
    layernormForward(rt, { out, inp: X, weight: W, bias: Bi, mean, rstd }, { N, C, eps: EPS });
    layernormBackward(rt, { dinp, dout: D, inp: X, weight: W, mean, rstd, dweight, dbias }, { N, C });
    check(await rt.readF32(out, N * C), f.out, "layernorm_forward");
    check(await rt.readF32(dinp, N * C), g.dinp, "layernorm_backward dinp");
    check(await rt.readF32(dweight, C), g.dweight, "layernorm_backward dweight");
    check(await rt.readF32(dbias, C), g.dbias, "layernorm_backward dbias");
  } else {
    const f = normRef.rmsnormForward(x, w, N, C, EPS);
    const g = normRef.rmsnormBackward(dout, x, w, f.rstd, N, C);
    rmsnormForward(rt, { out, inp: X, weight: W, rstd }, { N, C, eps: EPS });
    rmsnormBackward(rt, { dinp, dout: D, inp: X, weight: W, rstd, dweight }, { N, C });
    check(await rt.readF32(out, N * C), f.out, "rmsnorm_forward");
    check(await rt.readF32(dinp, N * C), g.dinp, "rmsnorm_backward dinp");
    check(await rt.readF32(dweight, C), g.dweight, "rmsnorm_backward dweight");
  }
  for (const b of [X, W, Bi, D, out, dinp, mean, rstd, dweight, dbias]) rt.pool.release(b);
}

type NormPass = "forward" | "backward" | "backward+dparams";

function normCase(kind: "layernorm" | "rmsnorm", pass: NormPass, N: number, C: number, note: string, quick = false): BenchCase {
  const stats = kind === "layernorm" ? 2 : 1; // saved per row
  const params = kind === "layernorm" ? 2 : 1; // vectors of C
  // forward: read inp, write out and the stats; backward: read dout, inp, dinp, write dinp
  let bytes = pass === "forward" ? 4 * (2 * N * C + stats * N + params * C) : 4 * (4 * N * C + stats * N + C);
  if (pass === "backward+dparams") bytes += 4 * (2 * N * C + stats * N + 2 * params * C); // column pass re-reads dout, inp
  return {
    kernel: `${kind}_${pass === "forward" ? "forward" : "backward"}${pass === "forward" ? "" : pass === "backward" ? " (dinp +=)" : " (dinp +=, dweight)"}`,
    size: `${N}x${C}${note ? ` ${note}` : ""}`,
    bytes,
    quick,
    async setup(rt) {
      await checkNorm(rt, kind);
      const rng = new Rng(3);
      const x = tiled(rt, rng, N * C, "bench-norm-inp", 0.5), dout = tiled(rt, rng, N * C, "bench-norm-dout");
      const w = tiled(rt, rng, C, "bench-norm-w"), bias = tiled(rt, rng, C, "bench-norm-b");
      const out = tiled(rt, rng, N * C, "bench-norm-out");
      const mean = tiled(rt, rng, N, "bench-norm-mean"), rstd = rt.pool.allocate(N * 4, "bench-norm-rstd");
      const dw = tiled(rt, rng, C, "bench-norm-dw"), db = tiled(rt, rng, C, "bench-norm-db");
      // valid statistics for the backward
      if (kind === "layernorm") layernormForward(rt, { out, inp: x, weight: w, bias, mean, rstd }, { N, C, eps: EPS });
      else rmsnormForward(rt, { out, inp: x, weight: w, rstd }, { N, C, eps: EPS });
      const withParams = pass === "backward+dparams";
      const run =
        kind === "layernorm"
          ? pass === "forward"
            ? () => layernormForward(rt, { out, inp: x, weight: w, bias, mean, rstd }, { N, C, eps: EPS })
            : () =>
                layernormBackward(
                  rt,
                  { dinp: out, dout, inp: x, weight: w, mean, rstd, ...(withParams ? { dweight: dw, dbias: db } : {}) },
                  { N, C, accumulate: true },
                )
          : pass === "forward"
            ? () => rmsnormForward(rt, { out, inp: x, weight: w, rstd }, { N, C, eps: EPS })
            : () =>
                rmsnormBackward(rt, { dinp: out, dout, inp: x, weight: w, rstd, ...(withParams ? { dweight: dw } : {}) }, { N, C, accumulate: true });
      return { run, cleanup: () => [x, dout, w, bias, out, mean, rstd, dw, db].forEach((b) => rt.pool.destroy(b)) };
    },
  };
}

/** Runs gelu and swiglu forward and backward on 1000 values against src/ref. */
async function checkActivations(rt: Runtime): Promise<void> {
  const rng = new Rng(9);
  const N = 1000;
  const a = rng.normalF32(N, 3), b = rng.normalF32(N), d = rng.normalF32(N);
  const A = rt.upload(a), B = rt.upload(b), D = rt.upload(d), o1 = rt.pool.acquire(N * 4), o2 = rt.pool.acquire(N * 4);
  geluForward(rt, { out: o1, inp: A }, { N });
  check(await rt.readF32(o1, N), actRef.geluForward(a), "gelu_forward", 1e-6);
  geluBackward(rt, { dinp: o1, inp: A, dout: D }, { N });
  check(await rt.readF32(o1, N), actRef.geluBackward(a, d), "gelu_backward", 1e-6);
  swigluForward(rt, { out: o1, gate: A, up: B }, { N });
  check(await rt.readF32(o1, N), actRef.swigluForward(a, b), "swiglu_forward", 1e-6);
  swigluBackward(rt, { dgate: o1, dup: o2, gate: A, up: B, dout: D }, { N });
  const g = actRef.swigluBackward(a, b, d);
  check(await rt.readF32(o1, N), g.dgate, "swiglu_backward dgate", 1e-6);
  check(await rt.readF32(o2, N), g.dup, "swiglu_backward dup", 1e-6);
  for (const x of [A, B, D, o1, o2]) rt.pool.release(x);
}

function activationCase(kind: "gelu" | "swiglu", pass: "forward" | "backward", rows: number, F: number, note: string, quick = false): BenchCase {
  const N = rows * F;
  // floats moved per element: gelu fwd 2, bwd 3; swiglu fwd 3, bwd 5 (gradients written)
  const per = kind === "gelu" ? (pass === "forward" ? 2 : 3) : pass === "forward" ? 3 : 5;
  return {
    kernel: `${kind}_${pass}`,
    size: `${rows}x${F}${note ? ` ${note}` : ""}`,
    bytes: 4 * per * N,
    quick,
    async setup(rt) {
      await checkActivations(rt);
      const rng = new Rng(4);
      const a = tiled(rt, rng, N, "bench-act-a"), b = tiled(rt, rng, N, "bench-act-b"), d = tiled(rt, rng, N, "bench-act-d");
      const o1 = rt.pool.allocate(N * 4, "bench-act-o1");
      const o2 = kind === "swiglu" && pass === "backward" ? rt.pool.allocate(N * 4, "bench-act-o2") : null;
      const run =
        kind === "gelu"
          ? pass === "forward"
            ? () => geluForward(rt, { out: o1, inp: a }, { N })
            : () => geluBackward(rt, { dinp: o1, inp: a, dout: d }, { N })
          : pass === "forward"
            ? () => swigluForward(rt, { out: o1, gate: a, up: b }, { N })
            : () => swigluBackward(rt, { dgate: o1, dup: o2!, gate: a, up: b, dout: d }, { N });
      return { run, cleanup: () => [a, b, d, o1, ...(o2 ? [o2] : [])].forEach((x) => rt.pool.destroy(x)) };
    },
  };
}

const NORM_SIZES: [number, string][] = [
  [1280, "gpt2-large"],
  [1600, "gpt2-xl"],
  [4096, "llama-3-8b"],
];

export const cases: BenchCase[] = [
  ...(["layernorm", "rmsnorm"] as const).flatMap((kind) => [
    normCase(kind, "forward", 64, 768, "", true),
    normCase(kind, "backward", 64, 768, "", true),
    ...NORM_SIZES.flatMap(([C, note]) => [normCase(kind, "forward", 5120, C, note), normCase(kind, "backward", 5120, C, note)]),
    normCase(kind, "backward+dparams", 5120, 1600, ""),
  ]),
  activationCase("gelu", "forward", 64, 3072, "", true),
  activationCase("gelu", "backward", 64, 3072, "", true),
  activationCase("gelu", "forward", 5120, 6400, "gpt2-xl 4C"),
  activationCase("gelu", "backward", 5120, 6400, "gpt2-xl 4C"),
  activationCase("swiglu", "forward", 64, 2816, "", true),
  activationCase("swiglu", "backward", 64, 2816, "", true),
  activationCase("swiglu", "forward", 5120, 14336, "llama-3-8b F"),
  activationCase("swiglu", "backward", 5120, 14336, "llama-3-8b F"),
];
