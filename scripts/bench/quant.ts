// Benchmark cases for quantized weights (src/ops/quant.ts): matmul_quant_forward and
// matmul_quant_backward_input with NF4 and int8 weights (and NF4 with double-quantized scales) at the
// linear-layer shapes of Llama-3-8B (C 4096, KV 1024, MLP 14336) and Qwen2.5-32B (C 5120, KV 1024,
// MLP 27648), 160 tokens x 32 prompts = 5120 rows; GPU quantization of one Llama-3-8B MLP weight from
// bf16 (GB/s of bf16 read + quantized written); 1024³ quick cases for lavapipe. flops = 2·M·N·K;
// bytes = activations read and written + the quantized weight. Each setup() first checks, once per
// runtime, GPU quantization against the bit-exact host reference and both matmuls against the
// float64 reference on the host-dequantized weight (throwing on a mismatch); the timed weights are
// random values (a block repeated) quantized on the GPU.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import {
  matmulQuantBackwardInput, matmulQuantForward, quantize, quantizedBytes, quantizeToNewBuffer, quantLayout, quantScratchBytes,
  QUANT_FORMATS, type QuantFormat,
} from "../../src/ops/quant.ts";
import { packHalves } from "../../src/ref/dtype.ts";
import { matmulBackward as backwardRef, matmulForward as forwardRef } from "../../src/ref/matmul.ts";
import { dequantizeRef, quantizeRef } from "../../src/ref/quant.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";
import { checkReduction, oncePerRuntime, repeatTile, ROWS, TILE } from "../lib/bench_inputs.ts";

/** An exact-size buffer of n words: a random block (f32 values, or bf16 pairs) repeated. */
function randomWords(rt: Runtime, n: number, rng: Rng, label: string, bf16 = false): GpuBuffer {
  const values = rng.normalF32(2 * Math.min(n, TILE), 0.05);
  const tile = bf16 ? packHalves(values, "bf16") : values.subarray(0, Math.min(n, TILE));
  return repeatTile(rt, n, tile, label);
}

/** A random weight [N, K] quantized on the GPU (exact-size buffer). */
function randomQuantWeight(rt: Runtime, N: number, K: number, format: QuantFormat, rng: Rng): GpuBuffer {
  const src = randomWords(rt, N * K, rng, "weight-f32");
  const w = quantizeToNewBuffer(rt, src, { N, K, format }, `weight-${format}`);
  rt.flush(); // the source may go now
  rt.pool.destroy(src);
  return w;
}

// ---- correctness checks (once per runtime) ----------------------------------------------------

const checkOnce = oncePerRuntime(checkAll);

async function checkAll(rt: Runtime): Promise<void> {
  const rng = new Rng(12);
  const M = 133, N = 70, K = 164;
  const inp = rng.normalF32(M * K), dout = rng.normalF32(M * N), bias = rng.normalF32(N);
  for (const format of QUANT_FORMATS) {
    const raw = rng.normalF32(N * K);
    const SRC = rt.upload(raw);
    const W = quantizeToNewBuffer(rt, SRC, { N, K, format });
    const words = new Uint32Array(await rt.read(W, quantLayout(N * K, format).words * 4));
    const host = quantizeRef(raw, format);
    for (let i = 0; i < host.length; i++) {
      if (words[i] !== host[i]) throw new Error(`quantize ${format}: word ${i} differs from the host reference`);
    }
    const w = dequantizeRef(host, N * K, format);
    const [INP, DOUT, B] = [inp, dout, bias].map((x) => rt.upload(x));
    const OUT = rt.pool.acquire(M * N * 4), DINP = rt.pool.acquire(M * K * 4);
    matmulQuantForward(rt, { out: OUT, inp: INP, weight: W, bias: B }, { M, N, K, format });
    checkReduction(await rt.readF32(OUT, M * N), forwardRef(inp, w, bias, { M, N, K }), K, `matmul_quant_forward ${format}`);
    matmulQuantBackwardInput(rt, { dinp: DINP, dout: DOUT, weight: W }, { M, N, K, format });
    checkReduction(await rt.readF32(DINP, M * K), backwardRef(dout, inp, w, { M, N, K }).dinp, N, `matmul_quant_backward_input ${format}`);
    for (const b of [SRC, INP, DOUT, B, OUT, DINP]) rt.pool.release(b);
    rt.pool.destroy(W);
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
  quick?: boolean;
}

function forwardCase(s: Shape, format: QuantFormat): BenchCase {
  const { M, N, K } = s;
  return {
    kernel: `matmul_quant_forward (${format})`,
    size: `${s.name} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: M * K * 4 + quantizedBytes(N, K, format) + M * N * 4,
    quick: s.quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(1);
      const w = randomQuantWeight(rt, N, K, format, rng);
      const inp = randomWords(rt, M * K, rng, "inp"), out = rt.pool.allocate(M * N * 4, "out");
      return {
        run: () => matmulQuantForward(rt, { out, inp, weight: w }, { M, N, K, format }),
        cleanup: () => [inp, w, out].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

function backwardInputCase(s: Shape, format: QuantFormat): BenchCase {
  const { M, N, K } = s;
  return {
    kernel: `matmul_quant_backward_input (${format})`,
    size: `${s.name} ${M}x${N}x${K}`,
    flops: 2 * M * N * K,
    bytes: M * N * 4 + quantizedBytes(N, K, format) + M * K * 4,
    quick: s.quick,
    async setup(rt) {
      await checkOnce(rt);
      const rng = new Rng(2);
      const w = randomQuantWeight(rt, N, K, format, rng);
      const dout = randomWords(rt, M * N, rng, "dout"), dinp = rt.pool.allocate(M * K * 4, "dinp");
      return {
        run: () => matmulQuantBackwardInput(rt, { dinp, dout, weight: w }, { M, N, K, format }),
        cleanup: () => [dout, w, dinp].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

function quantizeCase(name: string, N: number, K: number, format: QuantFormat, quick = false): BenchCase {
  const n = N * K;
  return {
    kernel: `quantize (bf16 → ${format})`,
    size: `${name} ${N}x${K}`,
    bytes: 2 * n + quantizedBytes(N, K, format),
    quick,
    async setup(rt) {
      await checkOnce(rt);
      const src = randomWords(rt, Math.ceil(n / 2), new Rng(3), "src-bf16", true);
      const out = rt.pool.allocate(quantizedBytes(N, K, format), "out");
      const sb = quantScratchBytes(n, format);
      const scratch = sb > 0 ? rt.pool.allocate(sb, "scratch") : undefined;
      return {
        run: () => quantize(rt, { out, src, scratch }, { n, format, srcDtype: "bf16" }),
        cleanup: () => [src, out, ...(scratch ? [scratch] : [])].forEach((b) => rt.pool.destroy(b)),
      };
    },
  };
}

const square: Shape = { name: "square", M: 1024, N: 1024, K: 1024, quick: true };

const llama8b: Shape[] = [
  { name: "llama3-8b q/o_proj", M: ROWS, N: 4096, K: 4096 },
  { name: "llama3-8b k/v_proj", M: ROWS, N: 1024, K: 4096 },
  { name: "llama3-8b gate/up_proj", M: ROWS, N: 14336, K: 4096 },
  { name: "llama3-8b down_proj", M: ROWS, N: 4096, K: 14336 },
];

const qwen32b: Shape[] = [
  { name: "qwen2.5-32b q/o_proj", M: ROWS, N: 5120, K: 5120 },
  { name: "qwen2.5-32b k/v_proj", M: ROWS, N: 1024, K: 5120 },
  { name: "qwen2.5-32b gate/up_proj", M: ROWS, N: 27648, K: 5120 },
  { name: "qwen2.5-32b down_proj", M: ROWS, N: 5120, K: 27648 },
];

export const cases: BenchCase[] = [
  forwardCase(square, "nf4"),
  backwardInputCase(square, "nf4"),
  quantizeCase("square", 1024, 1024, "nf4", true),
  ...(["nf4", "int8"] as const).flatMap((format) => [
    ...[...llama8b, ...qwen32b].map((s) => forwardCase(s, format)),
    ...[...llama8b, ...qwen32b].map((s) => backwardInputCase(s, format)),
  ]),
  forwardCase(llama8b[0], "nf4dq"),
  forwardCase(qwen32b[2], "nf4dq"),
  ...QUANT_FORMATS.map((f) => quantizeCase("llama3-8b gate_proj", 14336, 4096, f)),
];
