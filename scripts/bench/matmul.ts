// Benchmark cases for the linear-layer products (matmul_forward, matmul_backward_input,
// matmul_backward_weight) and the LM head: square sizes, and the real shapes of an ABFT step,
// 160 tokens x 32 prompts = 5120 rows through GPT-2 large (C 1280), GPT-2 XL (C 1600) and
// Llama-3-8B (C 4096, bf16 weights); the backward of one shape each; the LM head on 32 rows against
// the whole GPT-2 vocabulary and against 2 columns. flops = 2·M·N·K. Each setup() first checks
// every op on a small input against src/ref (throwing on a mismatch), then fills the timed inputs
// by tiling a block of random values.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { lmHeadBackward, lmHeadBackwardScratchBytes, lmHeadBackwardSplits, lmHeadForward } from "../../src/ops/lm_head.ts";
import {
  matmulBackwardInput,
  matmulBackwardWeight,
  matmulForward,
  matmulWeightGradScratchBytes,
  matmulWeightGradSplits,
  weightBytes,
  type WeightDtype,
} from "../../src/ops/matmul.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { lmHeadBackward as lmBackwardRef, lmHeadForward as lmForwardRef } from "../../src/ref/lm_head.ts";
import { matmulBackward as backwardRef, matmulForward as forwardRef } from "../../src/ref/matmul.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";
import { checkReduction, oncePerRuntime, randomBuffer, repeatTile, ROWS, TILE } from "../lib/bench_inputs.ts";

/** An exact-size buffer of n f32 values: a random block repeated. */
function randomF32(rt: Runtime, n: number, rng: Rng, label: string): GpuBuffer {
  return randomBuffer(rt, n, rng, label, 0.5);
}

/** An exact-size weight of n values stored as dtype (a random block repeated). */
function randomWeight(rt: Runtime, n: number, dtype: WeightDtype, rng: Rng, label: string): GpuBuffer {
  if (dtype === "f32") return randomF32(rt, n, rng, label);
  const words = packHalves(rng.normalF32(2 * Math.min(Math.ceil(n / 2), TILE), 0.05), dtype);
  return repeatTile(rt, Math.ceil(n / 2), words, label);
}

// ---- correctness checks (once per runtime) ----------------------------------------------------

const checkOnce = oncePerRuntime(checkAll);

async function checkAll(rt: Runtime): Promise<void> {
  const rng = new Rng(11);
  const M = 133, N = 70, K = 161;
  const inp = rng.normalF32(M * K), dout = rng.normalF32(M * N), bias = rng.normalF32(N);
  for (const dtype of ["f32", "bf16", "f16"] as const) {
    const raw = rng.normalF32(N * K);
    const data = dtype === "f32" ? raw : packHalves(raw, dtype);
    const w = dtype === "f32" ? Float64Array.from(raw) : unpackHalves(data as Uint32Array, N * K, dtype);
    const [INP, DOUT, B, W] = [inp, dout, bias, data].map((x) => rt.upload(x));
    const OUT = rt.pool.acquire(M * N * 4), DINP = rt.pool.acquire(M * K * 4);
    matmulForward(rt, { out: OUT, inp: INP, weight: W, bias: B }, { M, N, K, dtype });
    checkReduction(await rt.readF32(OUT, M * N), forwardRef(inp, w, bias, { M, N, K }), K, `matmul_forward ${dtype}`);
    matmulBackwardInput(rt, { dinp: DINP, dout: DOUT, weight: W }, { M, N, K, dtype });
    const g = backwardRef(dout, inp, w, { M, N, K });
    checkReduction(await rt.readF32(DINP, M * K), g.dinp, N, `matmul_backward_input ${dtype}`);
    if (dtype === "f32") {
      const DW = rt.upload(new Float32Array(N * K)), DB = rt.upload(new Float32Array(N));
      const scratch = rt.pool.acquire(matmulWeightGradScratchBytes({ M, N, K, splits: 3 }));
      matmulBackwardWeight(rt, { dweight: DW, dout: DOUT, inp: INP, dbias: DB, scratch }, { M, N, K, splits: 3 });
      checkReduction(await rt.readF32(DW, N * K), g.dweight, M, "matmul_backward_weight");
      checkReduction(await rt.readF32(DB, N), g.dbias, M, "matmul_backward_weight dbias");
      for (const b of [DW, DB, scratch]) rt.pool.release(b);
    }
    // LM head: the weight as a [V = N, C = K] vocabulary table, h = inp
    const rows = Uint32Array.from(rng.sample(M, 9)), cols = Uint32Array.from([3, 0, 69, 3, 41]);
    const ROWSB = rt.upload(rows), COLSB = rt.upload(cols), LOGITS = rt.pool.acquire(9 * N * 4);
    lmHeadForward(rt, { logits: LOGITS, h: INP, weight: W, rows: ROWSB }, { R: 9, C: K, M, V: N, dtype });
    checkReduction(await rt.readF32(LOGITS, 9 * N), lmForwardRef(inp, w, rows, null, K, N), K, `lm_head_forward ${dtype}`);
    const DH = rt.upload(new Float32Array(M * K));
    lmHeadBackward(rt, { dh: DH, dlogits: DOUT, weight: W, rows: ROWSB, cols: COLSB }, { R: 9, J: 5, C: K, M, V: N, dtype });
    checkReduction(await rt.readF32(DH, M * K), lmBackwardRef(dout, w, rows, cols, M, K, N), 5, `lm_head_backward ${dtype}`);
    for (const b of [INP, DOUT, B, W, OUT, DINP, ROWSB, COLSB, LOGITS, DH]) rt.pool.release(b);
  }
}

// ---- cases -------------------------------------------------------------------------------------

interface Shape {
  name: string;
  M: number;
  /** out_features */
  N: number;
  /** in_features */
  K: number;
  dtype?: WeightDtype;
  quick?: boolean;
}

function forwardCase(s: Shape): BenchCase {
  const { M, N, K, dtype = "f32" } = s;
  return {
    kernel: `matmul_forward (${dtype} weight)`,
    size: `${s.name} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: M * K * 4 + weightBytes(N, K, dtype) + M * N * 4,
    quick: s.quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(1);
      const inp = randomF32(rt, M * K, rng, "inp"), w = randomWeight(rt, N * K, dtype, rng, "weight");
      const out = rt.pool.allocate(M * N * 4, "out");
      return {
        run: () => matmulForward(rt, { out, inp, weight: w }, { M, N, K, dtype }),
        cleanup: () => [inp, w, out].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

function backwardInputCase(s: Shape): BenchCase {
  const { M, N, K, dtype = "f32" } = s;
  return {
    kernel: `matmul_backward_input (${dtype} weight)`,
    size: `${s.name} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: M * N * 4 + weightBytes(N, K, dtype) + M * K * 4,
    quick: s.quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(2);
      const dout = randomF32(rt, M * N, rng, "dout"), w = randomWeight(rt, N * K, dtype, rng, "weight");
      const dinp = rt.pool.allocate(M * K * 4, "dinp");
      return {
        run: () => matmulBackwardInput(rt, { dinp, dout, weight: w }, { M, N, K, dtype }),
        cleanup: () => [dout, w, dinp].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

function backwardWeightCase(s: Shape, split: boolean): BenchCase {
  const { M, N, K } = s;
  const splits = split ? matmulWeightGradSplits({ M, N, K }) : 1;
  return {
    kernel: `matmul_backward_weight (+dbias, splits ${splits})`,
    size: `${s.name} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: M * N * 4 + M * K * 4 + 2 * N * K * 4 + matmulWeightGradScratchBytes({ M, N, K, splits }) * 2,
    quick: s.quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(3);
      const dout = randomF32(rt, M * N, rng, "dout"), inp = randomF32(rt, M * K, rng, "inp");
      const dweight = rt.upload(new Float32Array(N * K)), dbias = rt.upload(new Float32Array(N));
      const bytes = matmulWeightGradScratchBytes({ M, N, K, splits });
      const scratch = bytes > 0 ? rt.pool.allocate(bytes, "scratch") : undefined;
      return {
        run: () => matmulBackwardWeight(rt, { dweight, dout, inp, dbias, scratch }, { M, N, K, splits }),
        cleanup: () => [dout, inp, dweight, dbias, ...(scratch ? [scratch] : [])].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

function lmHeadCase(direction: "forward" | "backward", R: number, J: number | null, C: number, V: number, quick = false): BenchCase {
  const cols = J ?? V;
  const splits = direction === "backward" ? lmHeadBackwardSplits({ R, J: cols, C }) : 1;
  return {
    kernel: `lm_head_${direction}${direction === "backward" ? ` (splits ${splits})` : ""}`,
    size: `gpt2-large R${R} x ${J === null ? `all ${V}` : `${J}`} cols, C${C}`,
    flops: 2 * R * cols * C,
    // the gathered weight rows dominate
    bytes: cols * C * 4 + R * C * 4 + R * cols * 4,
    quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(4);
      const M = ROWS;
      const h = randomF32(rt, M * C, rng, "h"), w = randomF32(rt, V * C, rng, "wte");
      const rows = rt.upload(Uint32Array.from(rng.sample(M, R)));
      const colBuf = J === null ? undefined : rt.upload(Uint32Array.from({ length: J }, () => rng.int(V)));
      const logits = randomF32(rt, R * cols, rng, "logits");
      const bytes = lmHeadBackwardScratchBytes({ R, C, splits });
      const scratch = bytes > 0 ? rt.pool.allocate(bytes, "scratch") : undefined;
      const dims = { R, J: cols, C, M, V };
      return {
        run: () =>
          direction === "forward"
            ? lmHeadForward(rt, { logits, h, weight: w, rows, cols: colBuf }, dims)
            : lmHeadBackward(rt, { dh: h, dlogits: logits, weight: w, rows, cols: colBuf, scratch }, { ...dims, splits }),
        cleanup: () => [h, w, rows, logits, ...(colBuf ? [colBuf] : []), ...(scratch ? [scratch] : [])].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

const square: Shape[] = [
  { name: "square", M: 1024, N: 1024, K: 1024, quick: true },
  { name: "square", M: 2048, N: 2048, K: 2048 },
  { name: "square", M: 4096, N: 4096, K: 4096 },
  { name: "square", M: 4096, N: 4096, K: 4096, dtype: "bf16" },
];

const real: Shape[] = [
  { name: "gpt2-large c_attn", M: ROWS, N: 3840, K: 1280 },
  { name: "gpt2-large c_proj", M: ROWS, N: 1280, K: 1280 },
  { name: "gpt2-large mlp c_fc", M: ROWS, N: 5120, K: 1280 },
  { name: "gpt2-large mlp c_proj", M: ROWS, N: 1280, K: 5120 },
  { name: "gpt2-xl c_attn", M: ROWS, N: 4800, K: 1600 },
  { name: "gpt2-xl c_proj", M: ROWS, N: 1600, K: 1600 },
  { name: "gpt2-xl mlp c_fc", M: ROWS, N: 6400, K: 1600 },
  { name: "gpt2-xl mlp c_proj", M: ROWS, N: 1600, K: 6400 },
  { name: "llama3-8b q_proj", M: ROWS, N: 4096, K: 4096, dtype: "bf16" },
  { name: "llama3-8b k/v_proj", M: ROWS, N: 1024, K: 4096, dtype: "bf16" },
  { name: "llama3-8b gate/up_proj", M: ROWS, N: 14336, K: 4096, dtype: "bf16" },
  { name: "llama3-8b down_proj", M: ROWS, N: 4096, K: 14336, dtype: "bf16" },
];

export const cases: BenchCase[] = [
  ...square.map(forwardCase),
  ...real.map(forwardCase),
  backwardInputCase({ name: "square", M: 1024, N: 1024, K: 1024, quick: true }),
  backwardInputCase({ name: "gpt2-large c_attn", M: ROWS, N: 3840, K: 1280 }),
  // the trained weights: W_Q / W_K of GPT-2 large (1280x1280) and Llama-3-8B q_proj (4096x4096)
  backwardWeightCase({ name: "square", M: 1024, N: 1024, K: 1024, quick: true }, false),
  backwardWeightCase({ name: "gpt2-large W_Q", M: ROWS, N: 1280, K: 1280 }, false),
  backwardWeightCase({ name: "gpt2-large W_Q", M: ROWS, N: 1280, K: 1280 }, true),
  backwardWeightCase({ name: "llama3-8b W_Q", M: ROWS, N: 4096, K: 4096 }, true),
  lmHeadCase("forward", 32, null, 1280, 50257),
  lmHeadCase("forward", 32, 2, 1280, 50257),
  lmHeadCase("backward", 32, null, 1280, 50257),
  lmHeadCase("backward", 32, 2, 1280, 50257),
];
