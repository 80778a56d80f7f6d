import { expect, test } from "bun:test";
import { abftLossBackward, abftLossForward, inductionThreshold, type AbftLossDims } from "../../src/ops/abft_loss.ts";
import { abftLossBackward as backwardRef, abftLossForward as forwardRef } from "../../src/ref/abft_loss.ts";
import type { Runtime } from "../../src/gpu/runtime.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

interface Case {
  d: AbftLossDims;
  att: Float32Array;
  labelPos: Uint32Array;
  correct: Uint32Array;
}

/**
 * B prompts of n_t <= T tokens: each head's row is a softmax of random logits over the first n_t
 * positions (0 beyond); K distinct label positions < n_t; prompt 0 mixes correct and wrong labels,
 * the last prompt has no correct label at all.
 */
function randomCase(rng: Rng, B: number, NH: number, T: number, K: number): Case {
  const att = new Float32Array(B * NH * T);
  const labelPos = new Uint32Array(B * K), correct = new Uint32Array(B * K);
  for (let b = 0; b < B; b++) {
    const nt = K + 1 + rng.int(T - K);
    rng.sample(nt, K).forEach((t, k) => (labelPos[b * K + k] = t));
    for (let k = 0; k < K; k++) correct[b * K + k] = b === B - 1 ? 0 : b === 0 ? k % 2 : rng.int(2);
    for (let h = 0; h < NH; h++) {
      const row = (b * NH + h) * T;
      const logits = Array.from({ length: nt }, () => rng.normal() * 2.5);
      const m = Math.max(...logits);
      let s = 0;
      for (const x of logits) s += Math.exp(x - m);
      for (let t = 0; t < nt; t++) att[row + t] = Math.exp(logits[t] - m) / s;
    }
  }
  return { d: { B, NH, T, K }, att, labelPos, correct };
}

/** Per prompt, a threshold halfway across the widest gap between the middle heads' S values. */
function splitThresholds(S: Float64Array, B: number, NH: number): Float32Array {
  const th = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    const s = Array.from(S.subarray(b * NH, (b + 1) * NH)).sort((x, y) => x - y);
    let best = 1;
    for (let i = 1; i < NH - 1; i++) if (s[i + 1] - s[i] > s[best + 1] - s[best]) best = i;
    if (s[best + 1] - s[best] < 1e-5) throw new Error(`heads of prompt ${b} too close to split: ${s}`);
    th[b] = (s[best] + s[best + 1]) / 2;
  }
  return th;
}

function upload(rt: Runtime, c: Case, threshold: Float32Array) {
  const { B, NH, T } = c.d;
  return {
    att: rt.upload(c.att),
    labelPos: rt.upload(c.labelPos),
    correct: rt.upload(c.correct),
    threshold: rt.upload(threshold),
    loss: rt.pool.acquire(B * NH * 4),
    mask: rt.pool.acquire(B * NH * 4),
    S: rt.pool.acquire(B * NH * 4),
    datt: rt.pool.acquire(B * NH * T * 4),
  };
}

test("inductionThreshold is k / (k + ln n_t)", () => {
  expect(inductionThreshold(4, Math.E ** 4)).toBeCloseTo(0.5, 12);
  expect(inductionThreshold(4, 100)).toBeCloseTo(4 / (4 + Math.log(100)), 12);
});

test("abft_loss forward and backward match the float64 reference, with and without the head filter", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("abft-loss");
  const B = 3, NH = 5, K = 4;
  for (const T of [7, 40, 163]) {
    const c = randomCase(rng, B, NH, T, K);
    const coef = { A: 0.3 + rng.next(), B: 0.5 + rng.next() };
    const scale = 1 / 32;
    const S0 = forwardRef(c.att, c.labelPos, c.correct, new Float32Array(B), c.d, { ...coef, filter: false }).S;
    const threshold = splitThresholds(S0, B, NH);
    const g = upload(rt, c, threshold);
    for (const filter of [true, false]) {
      const label = `T=${T} filter=${filter}`;
      const want = forwardRef(c.att, c.labelPos, c.correct, threshold, c.d, { ...coef, filter });
      const heads = want.mask.reduce((x, y) => x + y, 0);
      if (filter) expect(heads > 0 && heads < B * NH).toBe(true); // some heads pass, some don't
      else expect(heads).toBe(B * NH);
      abftLossForward(rt, g, c.d, { ...coef, filter });
      abftLossBackward(rt, g, c.d, { ...coef, scale });
      expectClose(await rt.readF32(g.mask, B * NH), want.mask, { rtol: 0, atol: 0, label: `mask ${label}` });
      // sums of K = 4 terms of size <= 1: a few f32 ulps
      expectClose(await rt.readF32(g.S, B * NH), want.S, { rtol: 1e-5, atol: 1e-7, label: `S ${label}` });
      expectClose(await rt.readF32(g.loss, B * NH), want.loss, { rtol: 1e-5, atol: 1e-6, label: `loss ${label}` });
      const dWant = backwardRef(want.mask, c.labelPos, c.correct, c.d, { ...coef, scale });
      expectClose(await rt.readF32(g.datt, B * NH * T), dWant, { rtol: 1e-6, atol: 0, label: `datt ${label}` });
    }
    for (const b of Object.values(g)) rt.pool.release(b);
  }
});

test("abft_loss reference backward is the derivative of the reference forward for fixed head masks", () => {
  const rng = testRng("abft-loss-fd");
  const B = 3, NH = 5, K = 4;
  for (const T of [7, 40, 163]) {
    const c = randomCase(rng, B, NH, T, K);
    const att = Float64Array.from(c.att);
    const coef = { A: 0.3 + rng.next(), B: 0.5 + rng.next() };
    const scale = 0.25;
    for (const filter of [true, false]) {
      const S0 = forwardRef(att, c.labelPos, c.correct, new Float64Array(B), c.d, { ...coef, filter: false }).S;
      const threshold = splitThresholds(S0, B, NH);
      const base = forwardRef(att, c.labelPos, c.correct, threshold, c.d, { ...coef, filter });
      const lossOf = () => {
        const f = forwardRef(att, c.labelPos, c.correct, threshold, c.d, { ...coef, filter });
        // the step is far smaller than any head's distance to its threshold: masks stay fixed
        expect(Array.from(f.mask)).toEqual(Array.from(base.mask));
        return scale * f.loss.reduce((x, y) => x + y, 0);
      };
      const h = 1e-6;
      const fd = new Float64Array(att.length);
      for (let i = 0; i < att.length; i++) {
        const x0 = att[i];
        att[i] = x0 + h;
        const up = lossOf();
        att[i] = x0 - h;
        const down = lossOf();
        att[i] = x0;
        fd[i] = (up - down) / (2 * h);
      }
      const got = backwardRef(base.mask, c.labelPos, c.correct, c.d, { ...coef, scale });
      expectClose(got, fd, { rtol: 1e-6, atol: 1e-8, label: `fd T=${T} filter=${filter}` });
    }
  }
});

test("abft_loss reads a label position past T as zero attention", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("abft-loss-oob");
  const c = randomCase(rng, 2, 3, 7, 4);
  c.labelPos[1] = 7; // == T
  c.labelPos[6] = 1000;
  const threshold = new Float32Array([0.1, 0.2]);
  const coef = { A: 0.7, B: 1.3 };
  const g = upload(rt, c, threshold);
  const want = forwardRef(c.att, c.labelPos, c.correct, threshold, c.d, { ...coef, filter: true });
  abftLossForward(rt, g, c.d, { ...coef, filter: true });
  abftLossBackward(rt, g, c.d, { ...coef, scale: 1 });
  expectClose(await rt.readF32(g.loss, 6), want.loss, { rtol: 1e-5, atol: 1e-6, label: "loss" });
  expectClose(await rt.readF32(g.S, 6), want.S, { rtol: 1e-5, atol: 1e-7, label: "S" });
  const dWant = backwardRef(want.mask, c.labelPos, c.correct, c.d, { ...coef, scale: 1 });
  expectClose(await rt.readF32(g.datt, 2 * 3 * 7), dWant, { rtol: 1e-6, atol: 0, label: "datt" });
  for (const b of Object.values(g)) rt.pool.release(b);
});
