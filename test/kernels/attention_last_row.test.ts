// The last-row gather (kernels/attention_last_row.wgsl): taken from the "full" forward's att it must
// equal, bit for bit, what attention_forward writes in "last" mode, and the float64 reference's
// attLast within 1e-5; on an arbitrary [B,NH,T,T] input it must equal the float64 gather exactly
// (lengths 0, above T, 1, T). The recorded tensor op attention(..., lastRow) must give the same
// attLast as the unrecorded one (which runs the "last" forward). No backward kernel: the gradient
// on attLast goes into attention_backward's dattLast, tested in attention.test.ts.
import { afterEach, expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { attentionForward, attentionLastRow, type AttentionDims } from "../../src/ops/attention.ts";
import { attentionForward as forwardRef, attentionLastRow as lastRowRef } from "../../src/ref/attention.ts";
import { clearTape, noGrad, parameter, tapeLength } from "../../src/tensor/autodiff.ts";
import { attention } from "../../src/tensor/ops.ts";
import { fromArray, scopeAsync } from "../../src/tensor/tensor.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

interface Case extends AttentionDims {
  /** what the lengths buffer holds (0 = empty sequence, above T = clamped to T) */
  lengths: number[];
}

// HS must be a multiple of 4 for attention_forward (vec4 loads): 8 and 12 are the awkward ones
const CASES: Case[] = [
  { B: 1, T: 1, NH: 1, NKV: 1, HS: 4, lengths: [1] },
  { B: 3, T: 37, NH: 3, NKV: 3, HS: 8, lengths: [37, 20, 1] },
  { B: 4, T: 163, NH: 6, NKV: 2, HS: 12, lengths: [0, 1000, 33, 162], scale: 0.4 },
];

/** normal values on valid tokens, NaN on padded ones (x [B,T,H,HS]): padding must never leak */
function tokens(rng: Rng, c: Case, H: number): Float32Array {
  const x = rng.normalF32(c.B * c.T * H * c.HS);
  for (let b = 0; b < c.B; b++) {
    const len = Math.min(c.lengths[b], c.T);
    x.fill(NaN, (b * c.T + len) * H * c.HS, (b + 1) * c.T * H * c.HS);
  }
  return x;
}

function nanBuffer(rt: Runtime, n: number): GpuBuffer {
  return rt.upload(new Float32Array(n).fill(NaN));
}

function release(rt: Runtime, ...bs: GpuBuffer[]): void {
  for (const b of bs) rt.pool.release(b);
}

/** element indices where the two f32 arrays differ in their bits (NaN payloads and -0 included) */
function bitMismatches(a: Float32Array, b: Float32Array): string[] {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const bad: string[] = [];
  for (let i = 0; i < ua.length && bad.length < 5; i++) if (ua[i] !== ub[i]) bad.push(`[${i}] ${a[i]} vs ${b[i]}`);
  return bad;
}

afterEach(() => clearTape());

test("gather of the full probabilities equals the 'last' forward bit for bit and the float64 reference", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-last-row");
  for (const c of CASES) {
    const { B, T, NH, NKV } = c;
    const label = `B${B} T${T} NH${NH}/${NKV} HS${c.HS} lengths ${c.lengths}`;
    const q = tokens(rng, c, NH), k = tokens(rng, c, NKV), v = tokens(rng, c, NKV);
    const lengths = new Uint32Array(c.lengths);
    const Q = rt.upload(q), K = rt.upload(k), V = rt.upload(v), L = rt.upload(lengths);
    const Y = rt.pool.acquire(q.length * 4), A = nanBuffer(rt, B * NH * T * T);
    const viaLastMode = nanBuffer(rt, B * NH * T), viaGather = nanBuffer(rt, B * NH * T);
    attentionForward(rt, Y, Q, K, V, L, c, { mode: "full", att: A });
    attentionLastRow(rt, viaGather, A, L, c);
    attentionForward(rt, Y, Q, K, V, L, c, { mode: "last", attLast: viaLastMode });
    const got = await rt.readF32(viaGather, B * NH * T);
    const want = await rt.readF32(viaLastMode, B * NH * T);
    expect(bitMismatches(got, want)).toEqual([]);
    // probabilities exp(s - m)/l with s accurate to a few ulp: relative error ~1e-7
    const ref = forwardRef(q, k, v, lengths, c).attLast;
    expectClose(got, ref, { rtol: 1e-5, atol: 1e-9, label: `attLast ${label}` });
    // rows of empty sequences are 0, every other row sums to 1
    for (let bh = 0; bh < B * NH; bh++) {
      const sum = got.subarray(bh * T, bh * T + T).reduce((s, x) => s + x, 0);
      expect(Math.abs(sum - (c.lengths[Math.floor(bh / NH)] === 0 ? 0 : 1))).toBeLessThan(1e-5);
    }
    release(rt, Q, K, V, L, Y, A, viaLastMode, viaGather);
  }
});

test("gather of an arbitrary [B,NH,T,T] equals the float64 gather exactly", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-last-row-gather");
  const shapes = [
    { B: 1, NH: 1, T: 1, lengths: [1] },
    { B: 5, NH: 3, T: 7, lengths: [0, 7, 1, 9, 4] },
    { B: 2, NH: 7, T: 163, lengths: [163, 100] },
  ];
  for (const d of shapes) {
    const { B, NH, T } = d;
    const att = rng.normalF32(B * NH * T * T);
    const lengths = new Uint32Array(d.lengths);
    const A = rt.upload(att), L = rt.upload(lengths), out = nanBuffer(rt, B * NH * T);
    attentionLastRow(rt, out, A, L, d);
    // moved, never computed: the f32 values come back exactly
    expectClose(await rt.readF32(out, B * NH * T), lastRowRef(att, lengths, d), { rtol: 0, atol: 0, label: `B${B} NH${NH} T${T}` });
    release(rt, A, L, out);
  }
});

test("the grid goes 2-D beyond 65535 workgroups", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-last-row-grid");
  const d = { B: 65537, NH: 256, T: 1 }; // 65537 workgroups of 256 outputs
  const n = d.B * d.NH;
  const att = rng.normalF32(n);
  const lengths = new Uint32Array(d.B).fill(1);
  lengths[d.B - 1] = 0; // the last sequence is empty: its row is 0
  const A = rt.upload(att), L = rt.upload(lengths), out = nanBuffer(rt, n);
  attentionLastRow(rt, out, A, L, d);
  const got = await rt.readF32(out, n);
  for (const i of [0, 1, 65535 * 256 + 3, n - d.NH - 1]) expect(got[i]).toBe(att[i]);
  for (let i = n - d.NH; i < n; i++) expect(got[i]).toBe(0);
  release(rt, A, L, out);
});

test("recorded attention(..., lastRow) gives the same attLast as the unrecorded one", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("attention-last-row-op");
  const c = CASES[2];
  const { B, T, NH, NKV, HS } = c;
  const q = tokens(rng, c, NH), k = tokens(rng, c, NKV), v = tokens(rng, c, NKV);
  const [plain, recorded] = await scopeAsync(async () => {
    const Q = parameter(fromArray(rt, q, [B, T, NH, HS], "q"));
    const K = fromArray(rt, k, [B, T, NKV, HS], "k"), V = fromArray(rt, v, [B, T, NKV, HS], "v");
    const L = fromArray(rt, new Uint32Array(c.lengths), [B], "lengths");
    const a = noGrad(() => attention(Q, K, V, L, c, true)); // "last" forward
    expect(tapeLength()).toBe(0);
    const b = attention(Q, K, V, L, c, true); // "full" forward + gather
    expect(tapeLength()).toBe(1);
    const out = [await a.attLast!.toF32(), await b.attLast!.toF32()];
    clearTape();
    return out;
  });
  expect(bitMismatches(recorded, plain)).toEqual([]);
});
