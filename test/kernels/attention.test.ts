// Causal GQA attention over right-padded batches: the GPU forward (y, full probabilities, last row)
// and backward (with and without the extra gradient on the last row's probabilities) against the
// float64 reference; the reference backward against central finite differences; the GQA sums of
// dk/dv against the same problem with the kv heads repeated; padding that holds NaN never leaks.
import { expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { attentionBackward, attentionForward, type AttentionDims } from "../../src/ops/attention.ts";
import { attentionBackward as backwardRef, attentionForward as forwardRef } from "../../src/ref/attention.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -24;

interface Case extends AttentionDims {
  lengths: number[];
}

const CASES: Case[] = [
  { B: 1, T: 1, NH: 4, NKV: 2, HS: 8, lengths: [1] },
  { B: 2, T: 7, NH: 4, NKV: 4, HS: 64, lengths: [7, 3], scale: 0.3 },
  { B: 3, T: 163, NH: 6, NKV: 3, HS: 80, lengths: [1, 7, 163] },
];

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i])) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** normal values on valid tokens, NaN on padded ones (x [B,T,H,HS]) */
function tokens(rng: Rng, c: Case, H: number): Float32Array {
  const x = rng.normalF32(c.B * c.T * H * c.HS);
  for (let b = 0; b < c.B; b++) {
    for (let t = c.lengths[b]; t < c.T; t++) x.fill(NaN, (b * c.T + t) * H * c.HS, (b * c.T + t + 1) * H * c.HS);
  }
  return x;
}

/** a GPU buffer of n floats filled with NaN, so that every output the kernel forgets shows */
function nanBuffer(rt: Runtime, n: number): GpuBuffer {
  return rt.upload(new Float32Array(n).fill(NaN));
}

function release(rt: Runtime, ...bs: GpuBuffer[]): void {
  for (const b of bs) rt.pool.release(b);
}

// y = sum_c p_c v_c is an f32 sum of up to T terms no larger than max|v|: its error grows like
// sqrt(T) eps max|v| where y itself may be near 0, hence atol = 2 sqrt(T) eps max|v| beside rtol 1e-5.
function yTol(c: Case, v: Float32Array) {
  return { rtol: 1e-5, atol: 2 * Math.sqrt(c.T) * EPS32 * maxAbs(v) };
}

test("forward matches the float64 reference: y, full probabilities and last row", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-forward");
  for (const c of CASES) {
    const { B, T, NH, NKV, HS } = c;
    const label = `B${B} T${T} NH${NH}/${NKV} HS${HS}`;
    const q = tokens(rng, c, NH), k = tokens(rng, c, NKV), v = tokens(rng, c, NKV);
    const lengths = new Uint32Array(c.lengths);
    const want = forwardRef(q, k, v, lengths, c);
    const Q = rt.upload(q), K = rt.upload(k), V = rt.upload(v), L = rt.upload(lengths);
    const Y = nanBuffer(rt, q.length), A = nanBuffer(rt, B * NH * T * T), AL = nanBuffer(rt, B * NH * T);

    attentionForward(rt, Y, Q, K, V, L, c);
    expectClose(await rt.readF32(Y, q.length), want.y, { ...yTol(c, v), label: `y (no probs) ${label}` });
    rt.write(Y, new Float32Array(q.length).fill(NaN));
    attentionForward(rt, Y, Q, K, V, L, c, { mode: "full", att: A });
    expectClose(await rt.readF32(Y, q.length), want.y, { ...yTol(c, v), label: `y (full) ${label}` });
    // probabilities: exp(s - m)/l with s accurate to a few ulp: relative error ~1e-7
    expectClose(await rt.readF32(A, B * NH * T * T), want.att, { rtol: 1e-5, atol: 1e-9, label: `att ${label}` });
    rt.write(Y, new Float32Array(q.length).fill(NaN));
    attentionForward(rt, Y, Q, K, V, L, c, { mode: "last", attLast: AL });
    expectClose(await rt.readF32(Y, q.length), want.y, { ...yTol(c, v), label: `y (last) ${label}` });
    const last = await rt.readF32(AL, B * NH * T);
    expectClose(last, want.attLast, { rtol: 1e-5, atol: 1e-9, label: `attLast ${label}` });
    // each last row sums to 1
    for (let bh = 0; bh < B * NH; bh++) {
      expect(Math.abs(last.subarray(bh * T, bh * T + T).reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-5);
    }
    release(rt, Q, K, V, L, Y, A, AL);
  }
});

test("padded rows give 0, an empty sequence gives 0 probabilities, lengths above T count as T", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-padding");
  const c: Case = { B: 3, T: 37, NH: 4, NKV: 2, HS: 8, lengths: [0, 37, 20] };
  const { B, T, NH, NKV, HS } = c;
  const q = tokens(rng, c, NH), k = tokens(rng, c, NKV), v = tokens(rng, c, NKV);
  const want = forwardRef(q, k, v, c.lengths, c);
  const Q = rt.upload(q), K = rt.upload(k), V = rt.upload(v), L = rt.upload(new Uint32Array([0, 1000, 20]));
  const Y = nanBuffer(rt, q.length), A = nanBuffer(rt, B * NH * T * T), AL = nanBuffer(rt, B * NH * T);
  attentionForward(rt, Y, Q, K, V, L, c, { mode: "full", att: A });
  const y = await rt.readF32(Y, q.length);
  expectClose(y, want.y, { ...yTol(c, v), label: "y" });
  for (let i = 0; i < T * NH * HS; i++) expect(y[i]).toBe(0); // sequence 0 is empty
  for (let i = (2 * T + 20) * NH * HS; i < 3 * T * NH * HS; i++) expect(y[i]).toBe(0);
  expectClose(await rt.readF32(A, B * NH * T * T), want.att, { rtol: 1e-5, atol: 1e-9, label: "att" });
  attentionForward(rt, Y, Q, K, V, L, c, { mode: "last", attLast: AL });
  const last = await rt.readF32(AL, B * NH * T);
  for (let i = 0; i < NH * T; i++) expect(last[i]).toBe(0);
  expectClose(last, want.attLast, { rtol: 1e-5, atol: 1e-9, label: "attLast" });
  release(rt, Q, K, V, L, Y, A, AL);
});

type Grad = "dy" | "dy+dattLast" | "dattLast only";

/** dy (NaN on padded rows, or 0) and dattLast (NaN beyond each last row's valid columns) */
function upstream(rng: Rng, c: Case, kind: Grad): { dy: Float32Array; dattLast?: Float32Array } {
  const dy = kind === "dattLast only" ? new Float32Array(c.B * c.T * c.NH * c.HS) : tokens(rng, c, c.NH);
  if (kind === "dy") return { dy };
  const dattLast = rng.normalF32(c.B * c.NH * c.T);
  for (let b = 0; b < c.B; b++) {
    for (let h = 0; h < c.NH; h++) dattLast.fill(NaN, (b * c.NH + h) * c.T + c.lengths[b], (b * c.NH + h + 1) * c.T);
  }
  return { dy, dattLast };
}

// dq, dk, dv are f32 sums of up to K = G*T products through a softmax backward whose dP - D may
// cancel; their error scales like sqrt(K) eps times the size of the gradients, hence
// atol = 4 sqrt(K) eps max|ref| beside rtol 1e-5.
function gradTol(K: number, want: ArrayLike<number>) {
  return { rtol: 1e-5, atol: 4 * Math.sqrt(K) * EPS32 * maxAbs(want) };
}

test("backward matches the float64 reference (dy, dy + dattLast, dattLast alone)", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-backward");
  for (const c of CASES) {
    const { B, T, NH, NKV, HS } = c;
    const G = NH / NKV;
    const q = tokens(rng, c, NH), k = tokens(rng, c, NKV), v = tokens(rng, c, NKV);
    const lengths = new Uint32Array(c.lengths);
    const Q = rt.upload(q), K = rt.upload(k), V = rt.upload(v), L = rt.upload(lengths);
    const Y = rt.pool.acquire(q.length * 4), A = rt.pool.acquire(B * NH * T * T * 4);
    attentionForward(rt, Y, Q, K, V, L, c, { mode: "full", att: A });
    const att = await rt.readF32(A, B * NH * T * T);
    for (const kind of ["dy", "dy+dattLast", "dattLast only"] as Grad[]) {
      const label = `${kind} B${B} T${T} NH${NH}/${NKV} HS${HS}`;
      const { dy, dattLast } = upstream(rng, c, kind);
      const want = backwardRef(dy, att, q, k, v, lengths, c, dattLast);
      const DY = rt.upload(dy), DL = dattLast ? rt.upload(dattLast) : undefined;
      const dq = nanBuffer(rt, q.length), dk = nanBuffer(rt, k.length), dv = nanBuffer(rt, v.length);
      const DS = nanBuffer(rt, B * NH * T * T);
      attentionBackward(rt, { dq, dk, dv }, DY, A, Q, K, V, L, DS, c, DL);
      expectClose(await rt.readF32(dq, q.length), want.dq, { ...gradTol(T, want.dq), label: `dq ${label}` });
      expectClose(await rt.readF32(dk, k.length), want.dk, { ...gradTol(G * T, want.dk), label: `dk ${label}` });
      expectClose(await rt.readF32(dv, v.length), want.dv, { ...gradTol(G * T, want.dv), label: `dv ${label}` });
      if (kind === "dattLast only") expect(maxAbs(want.dv)).toBe(0); // dv = P^T dy = 0
      else expect(maxAbs(want.dv)).toBeGreaterThan(0);
      release(rt, DY, dq, dk, dv, DS, ...(DL ? [DL] : []));
    }
    release(rt, Q, K, V, L, Y, A);
  }
});

test("reference backward matches central finite differences of the reference forward", () => {
  const rng = testRng("attention-fd");
  const d = { B: 2, T: 5, NH: 4, NKV: 2, HS: 8 };
  const lengths = [5, 3];
  const q = Float64Array.from(rng.normalF32(d.B * d.T * d.NH * d.HS));
  const k = Float64Array.from(rng.normalF32(d.B * d.T * d.NKV * d.HS));
  const v = Float64Array.from(rng.normalF32(d.B * d.T * d.NKV * d.HS));
  for (const kind of ["dy", "dy+dattLast", "dattLast only"] as Grad[]) {
    const dy = kind === "dattLast only" ? new Float64Array(q.length) : Float64Array.from(rng.normalF32(q.length));
    const dattLast = kind === "dy" ? undefined : Float64Array.from(rng.normalF32(d.B * d.NH * d.T));
    // L = sum(y * dy) + sum(attLast * dattLast)
    const loss = () => {
      const f = forwardRef(q, k, v, lengths, d);
      let s = 0;
      for (let i = 0; i < f.y.length; i++) s += f.y[i] * dy[i];
      if (dattLast) for (let i = 0; i < f.attLast.length; i++) s += f.attLast[i] * dattLast[i];
      return s;
    };
    const { att } = forwardRef(q, k, v, lengths, d);
    const got = backwardRef(dy, att, q, k, v, lengths, d, dattLast);
    for (const [name, x, g] of [["q", q, got.dq], ["k", k, got.dk], ["v", v, got.dv]] as const) {
      const numeric = new Float64Array(x.length);
      const h = 1e-5;
      for (let i = 0; i < x.length; i++) {
        const save = x[i];
        x[i] = save + h;
        const up = loss();
        x[i] = save - h;
        numeric[i] = (up - loss()) / (2 * h);
        x[i] = save;
      }
      expectClose(g, numeric, { rtol: 1e-5, atol: 1e-8, label: `d${name} (${kind}) vs finite differences` });
    }
  }
});

test("grouped-query heads: y, dq equal and dk, dv are the group sums of the repeated-kv problem", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-gqa");
  const gqa: Case = { B: 2, T: 7, NH: 4, NKV: 2, HS: 64, lengths: [7, 5] };
  const mha: Case = { ...gqa, NKV: 4 };
  const { B, T, NH, NKV, HS } = gqa;
  const G = NH / NKV;
  const q = tokens(rng, gqa, NH), k = tokens(rng, gqa, NKV), v = tokens(rng, gqa, NKV), dy = tokens(rng, gqa, NH);
  // k, v with each kv head repeated G times: [B,T,NH,HS]
  const repeat = (x: Float32Array) => {
    const out = new Float32Array(B * T * NH * HS);
    for (let bt = 0; bt < B * T; bt++) {
      for (let h = 0; h < NH; h++) {
        const src = (bt * NKV + Math.floor(h / G)) * HS;
        out.set(x.subarray(src, src + HS), (bt * NH + h) * HS);
      }
    }
    return out;
  };
  const lengths = rt.upload(new Uint32Array(gqa.lengths));
  const run = async (c: Case, kk: Float32Array, vv: Float32Array) => {
    const Q = rt.upload(q), K = rt.upload(kk), V = rt.upload(vv), DY = rt.upload(dy);
    const Y = rt.pool.acquire(q.length * 4), A = rt.pool.acquire(B * NH * T * T * 4), DS = rt.pool.acquire(B * NH * T * T * 4);
    const dq = rt.pool.acquire(q.length * 4), dk = rt.pool.acquire(kk.length * 4), dv = rt.pool.acquire(vv.length * 4);
    attentionForward(rt, Y, Q, K, V, lengths, c, { mode: "full", att: A });
    attentionBackward(rt, { dq, dk, dv }, DY, A, Q, K, V, lengths, DS, c);
    const out = {
      y: await rt.readF32(Y, q.length),
      dq: await rt.readF32(dq, q.length),
      dk: await rt.readF32(dk, kk.length),
      dv: await rt.readF32(dv, vv.length),
    };
    release(rt, Q, K, V, DY, Y, A, DS, dq, dk, dv);
    return out;
  };
  const a = await run(gqa, k, v);
  const b = await run(mha, repeat(k), repeat(v));
  // same arithmetic in the same order per query head: y and dq agree to the last bit
  expectClose(a.y, b.y, { rtol: 0, atol: 0, label: "y" });
  expectClose(a.dq, b.dq, { rtol: 0, atol: 0, label: "dq" });
  const sum = (x: Float32Array) => {
    const out = new Float64Array(B * T * NKV * HS);
    for (let bt = 0; bt < B * T; bt++) {
      for (let h = 0; h < NH; h++) {
        for (let i = 0; i < HS; i++) out[(bt * NKV + Math.floor(h / G)) * HS + i] += x[(bt * NH + h) * HS + i];
      }
    }
    return out;
  };
  expectClose(a.dk, sum(b.dk), { ...gradTol(G * T, a.dk), label: "dk group sums" });
  expectClose(a.dv, sum(b.dv), { ...gradTol(G * T, a.dv), label: "dv group sums" });
  rt.pool.release(lengths);
});
