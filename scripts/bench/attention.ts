// Benchmark cases for causal GQA attention (forward with each probability mode, backward) and
// rotary embeddings, at the evaluation shapes: B = 32 sequences of T = 163 tokens, Llama-3-8B
// (NH 32, NKV 8, HS 128) and GPT-2 XL (NH 25, HS 64). Each setup() first checks the op on a small
// input against src/ref (throwing on a mismatch), then fills the timed inputs by tiling a block of
// random values. `bytes` counts what one run must move (inputs read once, outputs written once);
// `flops` counts the causal products only (4 HS per query-key pair: q.k and p v), so the table
// shows both how close the run is to memory bandwidth and to the f32 peak.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { attentionBackward, attentionForward, type AttentionDims } from "../../src/ops/attention.ts";
import { rotaryBackward, rotaryForward } from "../../src/ops/rotary.ts";
import { attentionBackward as backwardRef, attentionForward as forwardRef } from "../../src/ref/attention.ts";
import { ropeInvFreq, rotaryForward as rotaryRef, sequentialPositions } from "../../src/ref/rotary.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";
import { oncePerRuntime, randomBuffer } from "../lib/bench_inputs.ts";


function check(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) throw new Error(`${what}: [${i}] got ${got[i]} want ${want[i]}`);
  }
}

// ---- correctness checks (once per runtime) ----------------------------------------------------

const checkOnce = oncePerRuntime(checkAll);

async function checkAll(rt: Runtime): Promise<void> {
  const rng = new Rng(7);
  const d = { B: 3, T: 37, NH: 4, NKV: 2, HS: 64 };
  const lengths = new Uint32Array([37, 1, 20]);
  const q = rng.normalF32(d.B * d.T * d.NH * d.HS), k = rng.normalF32(d.B * d.T * d.NKV * d.HS);
  const v = rng.normalF32(k.length), dy = rng.normalF32(q.length), dl = rng.normalF32(d.B * d.NH * d.T);
  const [Q, K, V, DY, DL, L] = [q, k, v, dy, dl, lengths].map((x) => rt.upload(x));
  const Y = rt.pool.acquire(q.length * 4), A = rt.pool.acquire(d.B * d.NH * d.T * d.T * 4), AL = rt.pool.acquire(d.B * d.NH * d.T * 4);
  const DS = rt.pool.acquire(A.size), dq = rt.pool.acquire(q.length * 4), dk = rt.pool.acquire(k.length * 4), dv = rt.pool.acquire(k.length * 4);
  const want = forwardRef(q, k, v, lengths, d);
  attentionForward(rt, Y, Q, K, V, L, d, { mode: "last", attLast: AL });
  check(await rt.readF32(AL, d.B * d.NH * d.T), want.attLast, 1e-5, 1e-9, "attention_forward attLast");
  attentionForward(rt, Y, Q, K, V, L, d, { mode: "full", att: A });
  check(await rt.readF32(Y, q.length), want.y, 1e-5, 1e-5, "attention_forward y");
  const att = await rt.readF32(A, d.B * d.NH * d.T * d.T);
  check(att, want.att, 1e-5, 1e-9, "attention_forward att");
  attentionBackward(rt, { dq, dk, dv }, DY, A, Q, K, V, L, DS, d, DL);
  const g = backwardRef(dy, att, q, k, v, lengths, d, dl);
  check(await rt.readF32(dq, q.length), g.dq, 1e-5, 1e-4, "attention_backward dq");
  check(await rt.readF32(dk, k.length), g.dk, 1e-5, 1e-4, "attention_backward dk");
  check(await rt.readF32(dv, k.length), g.dv, 1e-5, 1e-4, "attention_backward dv");
  const pos = sequentialPositions(d.B, d.T), freq = ropeInvFreq(d.HS, 500000);
  const P = rt.upload(pos), F = rt.upload(freq);
  rotaryForward(rt, Y, Q, P, F, { B: d.B, T: d.T, NH: d.NH, HS: d.HS });
  check(await rt.readF32(Y, q.length), rotaryRef(q, pos, freq, d.B, d.T, d.NH, d.HS), 1e-5, 2e-6, "rotary_forward");
  for (const b of [Q, K, V, DY, DL, L, Y, A, AL, DS, dq, dk, dv, P, F]) rt.pool.release(b);
}

// ---- attention --------------------------------------------------------------------------------

type Mode = "none" | "last" | "full";

function causalFlops(d: AttentionDims): number {
  return d.B * d.NH * ((d.T * (d.T + 1)) / 2) * 4 * d.HS;
}

function forwardCase(name: string, d: AttentionDims, mode: Mode, quick = false): BenchCase {
  const { B, T, NH, NKV, HS } = d;
  const qy = 2 * B * T * NH * HS * 4; // q read, y written
  const kv = 2 * B * T * NKV * HS * 4;
  const probs = mode === "full" ? B * NH * T * T * 4 : mode === "last" ? B * NH * T * 4 : 0;
  return {
    kernel: `attention_forward (${mode === "none" ? "y only" : mode === "last" ? "+attLast" : "+full att"})`,
    size: `${name} B${B} T${T} NH${NH}/${NKV} HS${HS}`,
    bytes: qy + kv + probs + B * 4,
    flops: causalFlops(d),
    quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(2);
      const q = randomBuffer(rt, B * T * NH * HS, rng, "q"), k = randomBuffer(rt, B * T * NKV * HS, rng, "k");
      const v = randomBuffer(rt, B * T * NKV * HS, rng, "v"), L = rt.upload(new Uint32Array(B).fill(T));
      const y = rt.pool.acquire(B * T * NH * HS * 4), out = rt.pool.acquire(Math.max(probs, 4));
      const p = mode === "full" ? ({ mode, att: out } as const) : mode === "last" ? ({ mode, attLast: out } as const) : undefined;
      return {
        run: () => attentionForward(rt, y, q, k, v, L, d, p),
        cleanup: () => [q, k, v, L, y, out].forEach((x) => rt.pool.release(x)),
      };
    },
  };
}

function backwardCase(name: string, d: AttentionDims, quick = false): BenchCase {
  const { B, T, NH, NKV, HS } = d;
  const qSize = B * T * NH * HS * 4, kSize = B * T * NKV * HS * 4, attSize = B * NH * T * T * 4;
  return {
    kernel: "attention_backward (dq + dk/dv, with dattLast)",
    size: `${name} B${B} T${T} NH${NH}/${NKV} HS${HS}`,
    // reads dy, q, att, k, v, dattLast; writes dq, dk, dv; the dscores scratch is written and read
    bytes: 3 * qSize + 4 * kSize + attSize + 2 * attSize + B * NH * T * 4,
    flops: 2 * causalFlops(d), // dP, dq, dk, dv: four products per pair
    quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(3);
      const q = randomBuffer(rt, qSize / 4, rng, "q"), k = randomBuffer(rt, kSize / 4, rng, "k"), v = randomBuffer(rt, kSize / 4, rng, "v");
      const dy = randomBuffer(rt, qSize / 4, rng, "dy"), dl = randomBuffer(rt, B * NH * T, rng, "dattLast");
      const L = rt.upload(new Uint32Array(B).fill(T));
      const y = rt.pool.acquire(qSize), att = rt.pool.acquire(attSize), ds = rt.pool.acquire(attSize);
      const dq = rt.pool.acquire(qSize), dk = rt.pool.acquire(kSize), dv = rt.pool.acquire(kSize);
      attentionForward(rt, y, q, k, v, L, d, { mode: "full", att }); // real probabilities to differentiate
      return {
        run: () => attentionBackward(rt, { dq, dk, dv }, dy, att, q, k, v, L, ds, d, dl),
        cleanup: () => [q, k, v, dy, dl, L, y, att, ds, dq, dk, dv].forEach((x) => rt.pool.release(x)),
      };
    },
  };
}

// ---- rotary -----------------------------------------------------------------------------------

function rotaryCase(name: string, B: number, T: number, NH: number, HS: number, backward: boolean, quick = false): BenchCase {
  const n = B * T * NH * HS;
  return {
    kernel: backward ? "rotary_backward" : "rotary_forward",
    size: `${name} B${B} T${T} NH${NH} HS${HS}`,
    bytes: 2 * n * 4 + B * T * 4 + (HS / 2) * 4,
    quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(4);
      const x = randomBuffer(rt, n, rng, "x"), out = rt.pool.acquire(n * 4);
      const P = rt.upload(sequentialPositions(B, T));
      const F = rt.upload(ropeInvFreq(HS, 500000, { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }));
      const dims = { B, T, NH, HS };
      return {
        run: backward ? () => rotaryBackward(rt, out, x, P, F, dims) : () => rotaryForward(rt, out, x, P, F, dims),
        cleanup: () => [x, out, P, F].forEach((b) => rt.pool.release(b)),
      };
    },
  };
}

const LLAMA3_8B: AttentionDims = { B: 32, T: 163, NH: 32, NKV: 8, HS: 128 };
const GPT2_XL: AttentionDims = { B: 32, T: 163, NH: 25, NKV: 25, HS: 64 };
const TINY: AttentionDims = { B: 2, T: 7, NH: 4, NKV: 2, HS: 64 };

export const cases: BenchCase[] = [
  forwardCase("tiny", TINY, "last", true),
  backwardCase("tiny", TINY, true),
  rotaryCase("tiny", 2, 7, 4, 64, false, true),
  forwardCase("llama-3-8b", LLAMA3_8B, "none"),
  forwardCase("llama-3-8b", LLAMA3_8B, "last"),
  forwardCase("llama-3-8b", LLAMA3_8B, "full"),
  forwardCase("gpt2-xl", GPT2_XL, "last"),
  forwardCase("gpt2-xl", GPT2_XL, "full"),
  backwardCase("llama-3-8b", LLAMA3_8B),
  rotaryCase("llama-3-8b q", 32, 163, 32, 128, false),
  rotaryCase("llama-3-8b k", 32, 163, 8, 128, false),
  rotaryCase("llama-3-8b q", 32, 163, 32, 128, true),
];
