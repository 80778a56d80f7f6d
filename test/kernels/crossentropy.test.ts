import { expect, test } from "bun:test";
import { crossentropyBackward, crossentropyForward } from "../../src/ops/crossentropy.ts";
import { crossentropyBackward as backwardRef, crossentropyForward as forwardRef } from "../../src/ref/crossentropy.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

// Tolerances. lse, loss and log-probs are differences of f32 quantities of size up to
// max|logit| + |lse|, so their absolute error scales with that size (a few ulps of it), not with the
// (possibly tiny) result: atol = 8·2^-24·(max|logit| + max|lse|). The row sum of exp is a 256-way tree
// of short strided sums, whose relative error is well below 1e-6 even at V = 152064.
function magnitudeAtol(logits: Float32Array, lse: Float64Array): number {
  let m = 0;
  for (const x of logits) m = Math.max(m, Math.abs(x));
  let l = 0;
  for (const x of lse) l = Math.max(l, Math.abs(x));
  return 8 * 2 ** -24 * (m + l);
}

test("crossentropy_forward: loss, lse, softmax and log-softmax rows match the float64 reference", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("crossentropy-forward");
  for (const [R, V] of [[3, 2], [4, 5], [3, 163], [5, 1025], [3, 50257], [1, 152064]]) {
    const logits = rng.normalF32(R * V, 3);
    const targets = Uint32Array.from({ length: R }, () => rng.int(V));
    const want = forwardRef(logits, targets, R, V);
    const atol = magnitudeAtol(logits, want.lse);
    const L = rt.upload(logits), Tg = rt.upload(targets);
    const loss = rt.pool.acquire(R * 4), lse = rt.pool.acquire(R * 4), out = rt.pool.acquire(R * V * 4);
    for (const output of ["none", "probs", "logprobs"] as const) {
      crossentropyForward(rt, { logits: L, targets: Tg, loss, lse, out }, R, V, output);
      expectClose(await rt.readF32(loss, R), want.loss, { rtol: 1e-5, atol, label: `loss R=${R} V=${V} ${output}` });
      expectClose(await rt.readF32(lse, R), want.lse, { rtol: 1e-5, atol, label: `lse R=${R} V=${V} ${output}` });
      if (output === "probs") {
        // exp(x − lse): relative error ≈ |x − lse|·eps plus lse's absolute error
        expectClose(await rt.readF32(out, R * V), want.probs, { rtol: 1e-5 + atol, atol: 1e-12, label: `probs R=${R} V=${V}` });
      } else if (output === "logprobs") {
        expectClose(await rt.readF32(out, R * V), want.logprobs, { rtol: 1e-5, atol, label: `logprobs R=${R} V=${V}` });
      }
    }
    for (const b of [L, Tg, loss, lse, out]) rt.pool.release(b);
  }
});

test("crossentropy_forward leaves `out` alone without an output request and is stable for huge logits", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("crossentropy-big");
  const R = 2, V = 300;
  const logits = rng.normalF32(R * V, 1);
  for (let v = 0; v < V; v++) logits[v] += 2000; // row 0 far from 0: a naive exp would overflow
  const targets = Uint32Array.from([rng.int(V), rng.int(V)]);
  const want = forwardRef(logits, targets, R, V);
  const sentinel = new Float32Array(R * V).fill(-7.5);
  const L = rt.upload(logits), Tg = rt.upload(targets), out = rt.upload(sentinel);
  const loss = rt.pool.acquire(R * 4), lse = rt.pool.acquire(R * 4);
  crossentropyForward(rt, { logits: L, targets: Tg, loss, lse, out }, R, V);
  expectClose(await rt.readF32(out, R * V), sentinel, { rtol: 0, atol: 0, label: "untouched out" });
  expectClose(await rt.readF32(loss, R), want.loss, { rtol: 1e-5, atol: magnitudeAtol(logits, want.lse), label: "loss" });
  crossentropyForward(rt, { logits: L, targets: Tg, loss, lse }, R, V); // no out at all
  expectClose(await rt.readF32(lse, R), want.lse, { rtol: 1e-5, atol: magnitudeAtol(logits, want.lse), label: "lse" });
  expect(() => crossentropyForward(rt, { logits: L, targets: Tg, loss, lse }, R, V, "probs")).toThrow(/needs an out buffer/);
  for (const b of [L, Tg, loss, lse, out]) rt.pool.release(b);
});

test("crossentropy reference backward equals central finite differences of the reference forward", () => {
  const rng = testRng("crossentropy-fd");
  for (const [R, V] of [[3, 2], [2, 5], [3, 163]]) {
    const logits = Float64Array.from(rng.normalF32(R * V, 2));
    const targets = Uint32Array.from({ length: R }, () => rng.int(V));
    const dloss = rng.normalF32(R);
    const lossOf = (x: Float64Array) => {
      const { loss } = forwardRef(x, targets, R, V);
      let s = 0;
      for (let r = 0; r < R; r++) s += loss[r] * dloss[r];
      return s;
    };
    const h = 1e-5;
    const fd = new Float64Array(R * V);
    for (let i = 0; i < R * V; i++) {
      const x0 = logits[i];
      logits[i] = x0 + h;
      const up = lossOf(logits);
      logits[i] = x0 - h;
      const down = lossOf(logits);
      logits[i] = x0;
      fd[i] = (up - down) / (2 * h);
    }
    expectClose(backwardRef(logits, targets, dloss, R, V), fd, { rtol: 1e-6, atol: 1e-9, label: `fd R=${R} V=${V}` });
  }
});

test("crossentropy_backward matches the float64 reference backward", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("crossentropy-backward");
  for (const [R, V] of [[3, 2], [4, 5], [3, 163], [2, 50257]]) {
    const logits = rng.normalF32(R * V, 3);
    const targets = Uint32Array.from({ length: R }, () => rng.int(V));
    const dloss = rng.normalF32(R);
    const want = backwardRef(logits, targets, dloss, R, V);
    const lseRef = forwardRef(logits, targets, R, V).lse;
    const L = rt.upload(logits), Tg = rt.upload(targets), D = rt.upload(dloss);
    const loss = rt.pool.acquire(R * 4), lse = rt.pool.acquire(R * 4), dlogits = rt.pool.acquire(R * V * 4);
    crossentropyForward(rt, { logits: L, targets: Tg, loss, lse }, R, V);
    crossentropyBackward(rt, { dlogits, dloss: D, logits: L, targets: Tg, lse }, R, V);
    // |dloss|·(p − 1) at the target cancels: absolute error about |dloss| times lse's error
    let dmax = 0;
    for (const x of dloss) dmax = Math.max(dmax, Math.abs(x));
    const atol = dmax * (magnitudeAtol(logits, lseRef) + 1e-7);
    expectClose(await rt.readF32(dlogits, R * V), want, { rtol: 1e-5 + magnitudeAtol(logits, lseRef), atol, label: `dlogits R=${R} V=${V}` });
    for (const b of [L, Tg, D, loss, lse, dlogits]) rt.pool.release(b);
  }
});
