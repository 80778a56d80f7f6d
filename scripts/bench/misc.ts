// Benchmark cases for the small kernels: embedding gather, cross-entropy, Adam, axpy.
// Each setup() first checks the kernel on a small input against src/ref (throwing on a mismatch),
// then fills the timed inputs by tiling a block of random values (generating 64M normals in JS
// would dominate the run). All of these kernels are memory-bound: `bytes` is what one run moves.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { adamUpdate, type AdamConfig } from "../../src/ops/adam.ts";
import { axpy } from "../../src/ops/axpy.ts";
import { crossentropyBackward, crossentropyForward } from "../../src/ops/crossentropy.ts";
import { embeddingForward, type EmbeddingDtype } from "../../src/ops/embedding.ts";
import { adamUpdate as adamRef } from "../../src/ref/adam.ts";
import { crossentropyBackward as ceBackwardRef, crossentropyForward as ceForwardRef } from "../../src/ref/crossentropy.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { embeddingForward as embeddingRef } from "../../src/ref/embedding.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";
import { repeatTile, TILE } from "../lib/bench_inputs.ts";


function check(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) throw new Error(`${what}: [${i}] got ${got[i]} want ${want[i]}`);
  }
}

// ---- embedding --------------------------------------------------------------------------------

async function checkEmbedding(rt: Runtime, dtype: EmbeddingDtype): Promise<void> {
  const rng = new Rng(1);
  const N = 37, C = 163, V = 50, P = 40;
  const raw = rng.normalF32(V * C), rawP = rng.normalF32(P * C);
  const pack = (x: Float32Array) => (dtype === "f32" ? x : packHalves(x, dtype));
  const vals = (x: Float32Array) => (dtype === "f32" ? Float64Array.from(x) : unpackHalves(packHalves(x, dtype), x.length, dtype));
  const ids = Uint32Array.from({ length: N }, () => rng.int(V)), pos = Uint32Array.from({ length: N }, () => rng.int(P));
  const bufs = [rt.upload(pack(raw)), rt.upload(pack(rawP)), rt.upload(ids), rt.upload(pos)];
  const out = rt.pool.acquire(N * C * 4);
  embeddingForward(rt, { out, ids: bufs[2], wte: bufs[0], wpe: bufs[1], pos: bufs[3] }, { N, C, V, P, dtype });
  check(await rt.readF32(out, N * C), embeddingRef(ids, vals(raw), C, vals(rawP), pos), 1e-6, 1e-6, `embedding ${dtype}`);
  for (const b of [...bufs, out]) rt.pool.release(b);
}

function embeddingCase(N: number, C: number, V: number, dtype: EmbeddingDtype, quick = false): BenchCase {
  const elem = dtype === "f32" ? 4 : 2;
  return {
    kernel: `embedding_forward (${dtype})`,
    size: `${N} tokens x ${C}, vocab ${V}`,
    bytes: N * C * (elem + 4) + N * 4,
    quick,
    async setup(rt) {
      await checkEmbedding(rt, dtype);
      const rng = new Rng(2);
      const block = rng.normalF32(TILE);
      const words = dtype === "f32" ? V * C : Math.ceil((V * C) / 2);
      const wte = repeatTile(rt, words, dtype === "f32" ? block : packHalves(block, dtype), "bench-wte");
      const ids = rt.upload(Uint32Array.from({ length: N }, () => rng.int(V)));
      const out = rt.pool.allocate(N * C * 4, "bench-emb-out");
      return {
        run: () => embeddingForward(rt, { out, ids, wte }, { N, C, V, dtype }),
        cleanup: () => {
          rt.pool.destroy(wte);
          rt.pool.destroy(out);
          rt.pool.release(ids);
        },
      };
    },
  };
}

// ---- cross-entropy ----------------------------------------------------------------------------

async function checkCrossentropy(rt: Runtime): Promise<void> {
  const rng = new Rng(3);
  const R = 3, V = 5003;
  const logits = rng.normalF32(R * V, 3), dloss = rng.normalF32(R);
  const targets = Uint32Array.from({ length: R }, () => rng.int(V));
  const L = rt.upload(logits), Tg = rt.upload(targets), D = rt.upload(dloss);
  const loss = rt.pool.acquire(R * 4), lse = rt.pool.acquire(R * 4), dl = rt.pool.acquire(R * V * 4);
  crossentropyForward(rt, { logits: L, targets: Tg, loss, lse }, R, V);
  crossentropyBackward(rt, { dlogits: dl, dloss: D, logits: L, targets: Tg, lse }, R, V);
  check(await rt.readF32(loss, R), ceForwardRef(logits, targets, R, V).loss, 1e-5, 1e-5, "crossentropy loss");
  check(await rt.readF32(dl, R * V), ceBackwardRef(logits, targets, dloss, R, V), 1e-4, 1e-6, "crossentropy dlogits");
  for (const b of [L, Tg, D, loss, lse, dl]) rt.pool.release(b);
}

function crossentropyCase(R: number, V: number, backward: boolean, quick = false): BenchCase {
  return {
    kernel: backward ? "crossentropy_backward" : "crossentropy_forward",
    size: `${R} rows x ${V}`,
    bytes: backward ? 8 * R * V : 4 * R * V,
    quick,
    async setup(rt) {
      await checkCrossentropy(rt);
      const rng = new Rng(4);
      const logits = repeatTile(rt, R * V, rng.normalF32(Math.min(TILE, R * V), 3), "bench-logits");
      const targets = rt.upload(Uint32Array.from({ length: R }, () => rng.int(V)));
      const dloss = rt.upload(rng.normalF32(R));
      const loss = rt.pool.acquire(R * 4), lse = rt.pool.acquire(R * 4);
      const dlogits = backward ? rt.pool.allocate(R * V * 4, "bench-dlogits") : undefined;
      crossentropyForward(rt, { logits, targets, loss, lse }, R, V); // lse for the backward
      return {
        run: () =>
          backward
            ? crossentropyBackward(rt, { dlogits: dlogits!, dloss, logits, targets, lse }, R, V)
            : crossentropyForward(rt, { logits, targets, loss, lse }, R, V),
        cleanup: () => {
          rt.pool.destroy(logits);
          if (dlogits) rt.pool.destroy(dlogits);
          for (const b of [targets, dloss, loss, lse]) rt.pool.release(b);
        },
      };
    },
  };
}

// ---- Adam -------------------------------------------------------------------------------------

const BENCH_ADAM: AdamConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

async function checkAdam(rt: Runtime): Promise<void> {
  const rng = new Rng(5);
  const N = 1003;
  const p0 = rng.normalF32(N, 0.02);
  const P = rt.upload(p0), M = rt.upload(new Float32Array(N)), V = rt.upload(new Float32Array(N)), G = rt.pool.acquire(N * 4);
  const p = Float64Array.from(p0), m = new Float64Array(N), v = new Float64Array(N);
  for (let t = 1; t <= 3; t++) {
    const g = rng.normalF32(N);
    rt.write(G, g);
    adamUpdate(rt, { param: P, grad: G, m: M, v: V }, N, t, BENCH_ADAM, 1 / 32);
    adamRef(p, g, m, v, t, BENCH_ADAM, 1 / 32);
  }
  check(await rt.readF32(P, N), p, 1e-5, 1e-8, "adam param");
  for (const b of [P, M, V, G]) rt.pool.release(b);
}

function adamCase(N: number, quick = false): BenchCase {
  return {
    kernel: "adam_update",
    size: `${(N / 2 ** 20).toFixed(0)}M floats`,
    bytes: 28 * N, // read param, grad, m, v; write param, m, v
    quick,
    async setup(rt) {
      await checkAdam(rt);
      const rng = new Rng(6);
      const param = repeatTile(rt, N, rng.normalF32(Math.min(TILE, N), 0.02), "bench-param");
      const grad = repeatTile(rt, N, rng.normalF32(Math.min(TILE, N)), "bench-grad");
      const m = repeatTile(rt, N, new Float32Array(Math.min(TILE, N)), "bench-m");
      const v = repeatTile(rt, N, new Float32Array(Math.min(TILE, N)), "bench-v");
      let t = 0;
      return {
        run: () => adamUpdate(rt, { param, grad, m, v }, N, ++t, BENCH_ADAM, 1 / 32),
        cleanup: () => {
          for (const b of [param, grad, m, v]) rt.pool.destroy(b);
        },
      };
    },
  };
}

// ---- axpy -------------------------------------------------------------------------------------

async function checkAxpy(rt: Runtime): Promise<void> {
  const rng = new Rng(7);
  const N = 70_001;
  const x = rng.normalF32(N), y = rng.normalF32(N);
  const X = rt.upload(x), Y = rt.upload(y);
  axpy(rt, Y, X, -0.5, N);
  const want = Float64Array.from(y, (yi, i) => yi - 0.5 * x[i]);
  check(await rt.readF32(Y, N), want, 1e-6, 1e-6, "axpy");
  for (const b of [X, Y]) rt.pool.release(b);
}

function axpyCase(N: number, quick = false): BenchCase {
  return {
    kernel: "axpy",
    size: `${(N / 2 ** 20).toFixed(0)}M floats`,
    bytes: 12 * N,
    quick,
    async setup(rt) {
      await checkAxpy(rt);
      const rng = new Rng(8);
      const x = repeatTile(rt, N, rng.normalF32(Math.min(TILE, N)), "bench-x");
      const y = repeatTile(rt, N, rng.normalF32(Math.min(TILE, N)), "bench-y");
      return {
        run: () => axpy(rt, y, x, 1e-3, N),
        cleanup: () => {
          rt.pool.destroy(x);
          rt.pool.destroy(y);
        },
      };
    },
  };
}

// 64M floats: W_Q and W_K of two 4096-wide layers (2·4096·4096 each); a 32-layer model is 16 such runs
const M64 = 64 * 2 ** 20;

export const cases: BenchCase[] = [
  embeddingCase(5120, 4096, 32000, "bf16"),
  embeddingCase(5120, 4096, 32000, "f32"),
  embeddingCase(256, 768, 5000, "bf16", true),
  crossentropyCase(32, 128256, false),
  crossentropyCase(32, 128256, true),
  crossentropyCase(4, 50257, false, true),
  adamCase(M64),
  adamCase(2 ** 20, true),
  axpyCase(M64),
  axpyCase(2 ** 20, true),
];
