// The autodiff end to end: a two-layer attention-only transformer (x → x + Wo·attn(Wq x, Wk x, Wv x),
// twice, GQA, two sequences of different lengths), loss = ABFT loss of every layer's last-row
// attention. Gradients of Wq and Wk of both layers must equal central finite differences of a
// float64 CPU forward built from src/ref. Also: the frozen first-layer V/O leave nothing on the
// tape, noGrad records nothing, and every saved activation is freed after backward.
import { afterEach, describe, expect, test } from "bun:test";
import { abftLossForward as abftRef } from "../../src/ref/abft_loss.ts";
import { attentionForward as attentionRef } from "../../src/ref/attention.ts";
import { matmulForward as matmulRef } from "../../src/ref/matmul.ts";
import { backward, clearTape, noGrad, parameter, tapeLength, tapeOps, zeroGrad } from "../../src/tensor/autodiff.ts";
import { abftLoss, add, attention, linear } from "../../src/tensor/ops.ts";
import { fromArray, scope, type Tensor } from "../../src/tensor/tensor.ts";
import { gpuRuntime, testRng } from "../helpers.ts";

const B = 2, T = 11, C = 24, NH = 4, NKV = 2, HS = 8, K = 3, L = 2;
const lengths = [11, 8];
const dims = { B, T, NH, NKV, HS };
const coefs = { A: 0.5, B: 1.0, filter: false };

function makeInputs(rng: ReturnType<typeof testRng>) {
  const x = rng.normalF32(B * T * C, 1);
  const w = Array.from({ length: L }, () => ({
    q: rng.normalF32(NH * HS * C, 0.6), k: rng.normalF32(NKV * HS * C, 0.6),
    v: rng.normalF32(NKV * HS * C, 0.3), o: rng.normalF32(C * NH * HS, 0.3),
  }));
  // label positions: distinct, below each sequence's last token; one correct label per prompt
  const labelPos = new Uint32Array([1, 4, 7, 0, 3, 5]);
  const correct = new Uint32Array([0, 1, 0, 1, 0, 0]);
  return { x, w, labelPos, correct };
}

/** float64 forward: the summed ABFT loss of all layers */
function refLoss(x0: Float32Array, w: { q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array }[], labelPos: Uint32Array, correct: Uint32Array): number {
  let x: Float64Array = Float64Array.from(x0);
  let total = 0;
  for (const l of w) {
    const M = B * T;
    const q = matmulRef(x, l.q, null, { M, N: NH * HS, K: C });
    const k = matmulRef(x, l.k, null, { M, N: NKV * HS, K: C });
    const v = matmulRef(x, l.v, null, { M, N: NKV * HS, K: C });
    const { y, attLast } = attentionRef(q, k, v, lengths, dims);
    const r = abftRef(attLast, labelPos, correct, [0, 0], { B, NH, T, K }, coefs);
    total += r.loss.reduce((s, v) => s + v, 0);
    const o = matmulRef(y, l.o, null, { M, N: C, K: NH * HS });
    x = x.map((xi, i) => xi + o[i]);
  }
  return total;
}

describe("autodiff", () => {
  afterEach(() => clearTape()); // a failed test must not leave its tape to the next
  test("two-layer attention-only model: dL/dWq, dL/dWk equal finite differences", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("autodiff-2layer");
    const { x, w, labelPos, correct } = makeInputs(rng);
    const params: Tensor[] = [];
    const weights = w.map((l, i) => {
      const q = parameter(fromArray(rt, l.q, [NH * HS, C], `l${i}.q`));
      const k = parameter(fromArray(rt, l.k, [NKV * HS, C], `l${i}.k`));
      params.push(q, k);
      return { q, k, v: fromArray(rt, l.v, [NKV * HS, C], `l${i}.v`), o: fromArray(rt, l.o, [C, NH * HS], `l${i}.o`) };
    });
    const lenT = fromArray(rt, new Uint32Array(lengths), [B]);
    const lp = fromArray(rt, labelPos, [B, K]);
    const cor = fromArray(rt, correct, [B, K]);
    const thr = fromArray(rt, new Float32Array(B), [B]);

    let gpuLoss = 0;
    await (async () => {
      const losses = scope(() => {
        let h = fromArray(rt, x, [B, T, C], "x");
        const out: Tensor[] = [];
        for (const l of weights) {
          const q = linear(h, l.q), k = linear(h, l.k), v = linear(h, l.v);
          const { y, attLast } = attention(q, k, v, lenT, dims, true);
          out.push(abftLoss(attLast!, { labelPos: lp, correct: cor, threshold: thr, K }, coefs).loss);
          h = add(h, linear(y, l.o));
        }
        return out;
      });
      // layer 0's V projection has neither a trainable input nor weight: it must not be recorded
      expect(tapeOps().slice(0, 2)).toEqual(["linear", "linear"]);
      // recorded linears: l0 q, k and o (its input y depends on Wq, Wk); l1 q, k, v, o
      expect(tapeOps().filter((o) => o === "linear").length).toBe(3 + 4);
      for (const t of losses) gpuLoss += (await t.toF32()).reduce((s, v) => s + v, 0);
      backward(losses.map((t) => ({ tensor: t, grad: 1 })));
      losses.forEach((t) => t.dispose());
    })();
    expect(tapeLength()).toBe(0);

    const want = refLoss(x, w, labelPos, correct);
    expect(Math.abs(gpuLoss - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));

    // central differences in float64 on 5 random entries of each trained weight
    const eps = 1e-4;
    for (const [pi, p] of params.entries()) {
      const layer = Math.floor(pi / 2), which = pi % 2 ? "k" : "q";
      const grad = await p.grad!.toF32();
      const arr = w[layer][which];
      let scaleG = 0;
      for (const g of grad) scaleG = Math.max(scaleG, Math.abs(g));
      for (let s = 0; s < 5; s++) {
        const i = rng.int(arr.length);
        const orig = arr[i];
        const bump = (delta: number) => {
          const copy = Float32Array.from(arr);
          copy[i] = orig + delta;
          const ww = w.map((l, j) => (j === layer ? { ...l, [which]: copy } : l));
          return refLoss(x, ww, labelPos, correct);
        };
        const fd = (bump(eps) - bump(-eps)) / (2 * eps);
        expect(Math.abs(fd - grad[i])).toBeLessThan(2e-3 * scaleG + 1e-5);
      }
      expect(scaleG).toBeGreaterThan(0);
    }
    zeroGrad(params);
  });

  test("noGrad records nothing and frees everything it made", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("autodiff-nograd");
    const Wq = parameter(fromArray(rt, rng.normalF32(8 * 6), [8, 6], "wq"));
    const inUse = rt.pool.stats.inUse;
    noGrad(() => scope(() => { linear(linear(fromArray(rt, rng.normalF32(5 * 6), [5, 6]), Wq), fromArray(rt, rng.normalF32(3 * 8), [3, 8])); }));
    expect(tapeLength()).toBe(0);
    expect(rt.pool.stats.inUse).toBe(inUse);
  });

  test("after backward every saved activation is back in the pool", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("autodiff-free");
    const W = parameter(fromArray(rt, rng.normalF32(7 * 5), [7, 5], "w"));
    const W2 = fromArray(rt, rng.normalF32(3 * 7), [3, 7], "w2");
    const inUse = rt.pool.stats.inUse;
    const loss = scope(() => linear(linear(fromArray(rt, rng.normalF32(4 * 5), [4, 5]), W), W2));
    expect(tapeLength()).toBe(2);
    const dout = fromArray(rt, rng.normalF32(4 * 3), [4, 3]);
    backward([{ tensor: loss, grad: dout }]);
    loss.dispose();
    const gradBytes = W.grad!.buf.size;
    expect(rt.pool.stats.inUse).toBe(inUse + gradBytes);
    zeroGrad([W]);
    expect(rt.pool.stats.inUse).toBe(inUse);
  });
});
