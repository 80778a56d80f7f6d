// Quantized weights (src/ops/quant.ts): the NF4 code book, round trips of hand-built blocks, GPU
// quantization (kernels/quantize_nf4.wgsl, quantize_int8.wgsl) equal to the host reference
// (src/ref/quant.ts) bit for bit, and the quantized matmuls (matmul_quant_forward,
// matmul_quant_backward_input) equal to the float64 matmul reference applied to the host-dequantized
// weight, at awkward sizes, with and without bias / accumulation; plus the memory estimate.
import { describe, expect, test } from "bun:test";
import { estimateMemory, planMemory, type MemoryDims } from "../../src/abft/memory.ts";
import { kernelInfo } from "../../src/gpu/kernels.ts";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import {
  matmulQuantBackwardInput, matmulQuantForward, quantize, quantizedBytes, quantizeToNewBuffer, quantLayout, quantScratchBytes,
  QUANT_FORMATS, type QuantFormat,
} from "../../src/ops/quant.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { matmulBackward as refBackward, matmulForward as refForward } from "../../src/ref/matmul.ts";
import {
  bitsF32, blockScale, codeAt, dequantizeRef, f32Bits, INV127, NF4_CODE, NF4_MID, quantizeRef,
} from "../../src/ref/quant.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -23;
const fr = Math.fround;

/** f32 sum of L products of unit-size values: see sumTol in test/kernels/matmul.test.ts */
function sumTol(L: number, extra = 0): { rtol: number; atol: number } {
  return { rtol: 1e-5, atol: 4 * EPS32 * (L + extra) + 1e-7 };
}

function nextUp(x: number): number {
  const b = f32Bits(x);
  if (x === 0) return bitsF32(1);
  return bitsF32(x > 0 ? b + 1 : b - 1);
}

function nextDown(x: number): number {
  return -nextUp(-x);
}

function release(rt: Runtime, ...bufs: GpuBuffer[]): void {
  for (const b of bufs) rt.pool.release(b);
}

/** GPU quantization of `values` (uploaded as srcDtype) read back as words. */
async function gpuQuantize(rt: Runtime, values: Float32Array, format: QuantFormat, srcDtype: "f32" | "bf16" | "f16" = "f32"): Promise<Uint32Array> {
  const n = values.length;
  const src = rt.upload(srcDtype === "f32" ? values : packHalves(values, srcDtype));
  const out = rt.pool.acquire(quantizedBytes(n, 1, format));
  const sb = quantScratchBytes(n, format);
  const scratch = sb > 0 ? rt.pool.acquire(sb) : undefined;
  quantize(rt, { out, src, scratch }, { n, format, srcDtype });
  const words = new Uint32Array(await rt.read(out, quantLayout(n, format).words * 4));
  release(rt, src, out, ...(scratch ? [scratch] : []));
  return words;
}

function expectSameWords(got: Uint32Array, want: Uint32Array, label: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      throw new Error(`${label}: word ${i} is ${got[i].toString(16)}, the host reference has ${want[i].toString(16)} (of ${want.length})`);
    }
  }
}

describe("NF4 code book", () => {
  test("is bitsandbytes' float32 table, and the kernels carry the same bits", () => {
    expect(NF4_CODE.length).toBe(16);
    for (let i = 0; i < 16; i++) expect(fr(NF4_CODE[i])).toBe(NF4_CODE[i]);
    for (let i = 0; i < 15; i++) expect(NF4_CODE[i]).toBeLessThan(NF4_CODE[i + 1]);
    expect([NF4_CODE[0], NF4_CODE[7], NF4_CODE[15]]).toEqual([-1, 0, 1]);
    // bitsandbytes' dQuantizeNF4 thresholds, printed there as doubles of the same f32 values
    expect(NF4_MID[7]).toBe(fr(0.03979014977812767));
    expect(NF4_MID[14]).toBe(fr(0.8614784181118011));
    expect(NF4_MID[0]).toBe(fr(-0.8480964004993439));
    const hex = (x: number) => `0x${f32Bits(x).toString(16).padStart(8, "0")}u`;
    for (const file of ["matmul_quant_forward", "matmul_quant_backward_input"]) {
      const src = kernelInfo(file).source;
      for (const c of NF4_CODE) expect(src).toContain(hex(c));
    }
    const q = kernelInfo("quantize_nf4").source;
    for (const m of NF4_MID) expect(q).toContain(hex(m));
    expect(kernelInfo("quantize_int8").source).toContain(hex(INV127));
  });
});

describe("round trips of hand-built blocks", () => {
  test("NF4: code values × a scale come back exactly; values between code points go to the nearest", async () => {
    const rt = await gpuRuntime();
    const s = fr(0.37);
    // block 0: element j holds code j % 16 times s (absmax s: it holds -s and +s)
    // block 1: for each gap (c_i, c_i+1) a value 30% and one 70% of the way, then the f32 threshold
    //   product itself (a tie: goes to the lower code) and its successor (the upper code)
    const vals = new Float32Array(128);
    const want = new Uint8Array(128);
    for (let j = 0; j < 64; j++) {
      vals[j] = fr(NF4_CODE[j % 16] * s);
      want[j] = j % 16;
    }
    vals[64] = -s;
    want[64] = 0;
    vals[65] = s;
    want[65] = 15;
    for (let i = 0; i < 15; i++) {
      const lo = NF4_CODE[i], hi = NF4_CODE[i + 1];
      const t = fr(NF4_MID[i] * s);
      const e = 66 + 4 * i;
      vals[e] = fr((0.7 * lo + 0.3 * hi) * s); // nearer lo
      want[e] = i;
      vals[e + 1] = fr((0.3 * lo + 0.7 * hi) * s); // nearer hi
      want[e + 1] = i + 1;
      vals[e + 2] = t;
      want[e + 2] = i;
      vals[e + 3] = nextUp(t);
      want[e + 3] = i + 1;
    }
    want[126] = want[127] = 7; // zeros
    for (const format of ["nf4", "nf4dq"] as const) {
      const host = quantizeRef(vals, format);
      for (let e = 0; e < 128; e++) expect(codeAt(host, e, format)).toBe(want[e]);
      if (format === "nf4") {
        expect(bitsF32(host[quantLayout(128, format).scaleOffset])).toBe(s);
        const back = dequantizeRef(host, 128, format);
        for (let j = 0; j < 64; j++) expect(back[j]).toBe(vals[j]);
        // the error of a value between code points is its distance to the nearest code value (up to
        // f32 rounding of the code value, and of the midpoint for the ties)
        for (let e = 66; e < 128; e++) {
          const nearest = Math.min(...NF4_CODE.map((c) => Math.abs(vals[e] - c * s)));
          expect(Math.abs(Math.abs(back[e] - vals[e]) - nearest)).toBeLessThanOrEqual(4 * EPS32 * s);
        }
      }
      expectSameWords(await gpuQuantize(rt, vals, format), host, `${format} hand-built`);
    }
  });

  test("int8: q · scale gives code q; the scale is absmax · f32(1/127); halfway rounds toward zero", async () => {
    const rt = await gpuRuntime();
    const s = fr(0.0123);
    const vals = new Float32Array(64);
    const want = new Int8Array(64);
    // block 0: q · s for q = -127, 127, and 30 spread values
    const qs = [-127, 127, 0, 1, -1, 2, -2, 5, -9, 17, -33, 64, -64, 100, -100, 126, -126, 3, 4, 6, 7, 8, 10, 50, -50, 90, -90, 120, -120, 11, 12, 13];
    qs.forEach((q, j) => {
      vals[j] = fr(q * s);
      want[j] = q;
    });
    // block 1: absmax 127·s again, then values 0.3 and 0.7 of the way between q and q + 1, and the
    // exact threshold products (q + ½)·d, which go toward zero
    vals[32] = fr(127 * s);
    want[32] = 127;
    const A = fr(127 * s);
    const d = fr(A * INV127);
    for (let j = 0; j < 10; j++) {
      const q = 3 * j + 1;
      const sign = j % 2 ? -1 : 1;
      vals[33 + 3 * j] = sign * fr((q + 0.3) * d);
      want[33 + 3 * j] = sign * q;
      vals[34 + 3 * j] = sign * fr((q + 0.7) * d);
      want[34 + 3 * j] = sign * (q + 1);
      vals[35 + 3 * j] = sign * fr((q + 0.5) * d);
      want[35 + 3 * j] = sign * q;
    }
    const host = quantizeRef(vals, "int8");
    const L = quantLayout(64, "int8");
    expect(bitsF32(host[L.scaleOffset])).toBe(fr(fr(127 * s) * INV127));
    expect(bitsF32(host[L.scaleOffset + 1])).toBe(d);
    for (let e = 0; e < 64; e++) expect(codeAt(host, e, "int8")).toBe(want[e]);
    const back = dequantizeRef(host, 64, "int8");
    // at most half a step (plus the f32 rounding of the thresholds and of q · d)
    for (let e = 0; e < 64; e++) expect(Math.abs(back[e] - vals[e])).toBeLessThanOrEqual(d / 2 + 2 * EPS32 * Math.abs(vals[e]));
    expectSameWords(await gpuQuantize(rt, vals, "int8"), host, "int8 hand-built");
  });
});

describe("GPU quantization equals the host reference bit for bit", () => {
  test("random weights at awkward sizes, every format, from f32, bf16 and f16", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("quantize-random");
    // 64·256·2 + 1000 values: three nf4dq groups, the last one partial
    for (const n of [1, 7, 8, 31, 63, 64, 65, 200, 37 * 70, 64 * 256 * 2 + 1000]) {
      const vals = rng.normalF32(n, 0.02);
      for (const format of QUANT_FORMATS) {
        expectSameWords(await gpuQuantize(rt, vals, format), quantizeRef(vals, format), `${format} n=${n}`);
      }
    }
    for (const srcDtype of ["bf16", "f16"] as const) {
      const n = 163 * 70;
      const raw = rng.normalF32(n, 0.5);
      const stored = Float32Array.from(unpackHalves(packHalves(raw, srcDtype), n, srcDtype));
      for (const format of QUANT_FORMATS) {
        expectSameWords(await gpuQuantize(rt, raw, format, srcDtype), quantizeRef(stored, format), `${format} from ${srcDtype}`);
      }
    }
  });

  test("values on and next to every decision threshold, zero blocks and equal absmax groups", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("quantize-thresholds");
    const n = 64 * 300;
    const vals = new Float32Array(n);
    for (let b = 0; b < 300; b++) {
      const base = b * 64;
      if (b % 50 === 7) continue; // an all-zero block
      // absmax varies per block (but is equal across blocks 100..149: step 0 in part of a dq group)
      const A = b >= 100 && b < 150 ? fr(0.25) : fr(0.01 + rng.next());
      vals[base] = b % 2 ? -A : A;
      for (let j = 1; j < 64; j++) {
        const i = (j + b) % 15;
        const t = fr(NF4_MID[i] * A);
        vals[base + j] = j % 3 === 0 ? t : j % 3 === 1 ? nextUp(t) : nextDown(t);
      }
    }
    for (const format of ["nf4", "nf4dq"] as const) {
      expectSameWords(await gpuQuantize(rt, vals, format), quantizeRef(vals, format), `${format} thresholds`);
    }
    // int8: the thresholds (q + ½)·d of blocks of 32, and their neighbours
    const v8 = new Float32Array(32 * 200);
    for (let b = 0; b < 200; b++) {
      const A = fr(0.001 + rng.next());
      const d = fr(A * INV127);
      v8[b * 32] = A;
      for (let j = 1; j < 32; j++) {
        const t = fr((rng.int(127) + 0.5) * d) * (j % 2 ? 1 : -1);
        v8[b * 32 + j] = j % 3 === 0 ? t : j % 3 === 1 ? nextUp(t) : nextDown(t);
      }
    }
    expectSameWords(await gpuQuantize(rt, v8, "int8"), quantizeRef(v8, "int8"), "int8 thresholds");
  });

  test("nf4dq keeps nf4's codes and stores each absmax within half a step of its group", () => {
    const rng = testRng("quantize-dq-error");
    const n = 64 * 700;
    const vals = rng.normalF32(n);
    const plain = quantizeRef(vals, "nf4");
    const dq = quantizeRef(vals, "nf4dq");
    const Lp = quantLayout(n, "nf4"), Ld = quantLayout(n, "nf4dq");
    for (let w = 0; w < Lp.codeWords; w++) expect(dq[w]).toBe(plain[w]);
    for (let b = 0; b < Lp.blocks; b++) {
      const A = bitsF32(plain[Lp.scaleOffset + b]);
      const step = bitsF32(dq[Ld.groupOffset + 2 * Math.floor(b / 256) + 1]);
      expect(step).toBeGreaterThan(0);
      expect(Math.abs(blockScale(dq, Ld, b) - A)).toBeLessThanOrEqual(step / 2 + 4 * EPS32 * A);
    }
  });
});

// ---- quantized matmuls ------------------------------------------------------------------------

/** A random weight [N, K] quantized on the GPU, and its values as the kernels see them. */
async function makeWeight(rt: Runtime, rng: Rng, N: number, K: number, format: QuantFormat): Promise<{ buf: GpuBuffer; values: Float32Array }> {
  const raw = rng.normalF32(N * K);
  const src = rt.upload(raw);
  const buf = quantizeToNewBuffer(rt, src, { N, K, format });
  const words = new Uint32Array(await rt.read(buf, quantLayout(N * K, format).words * 4));
  rt.pool.release(src);
  expectSameWords(words, quantizeRef(raw, format), `weight ${N}x${K} ${format}`);
  return { buf, values: dequantizeRef(words, N * K, format) };
}

const SIZES = [
  [1, 1, 1], [7, 33, 64], [33, 163, 70], [130, 129, 256], [163, 257, 37], [5, 300, 12], [129, 7, 131],
];

describe("matmul_quant_forward", () => {
  test("equals the float64 product with the dequantized weight, every format, with and without bias", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-quant-forward");
    let i = 0;
    for (const format of QUANT_FORMATS) {
      for (const [M, N, K] of SIZES) {
        const hasBias = i++ % 2 === 0;
        const w = await makeWeight(rt, rng, N, K, format);
        const inp = rng.normalF32(M * K);
        const bias = hasBias ? rng.normalF32(N) : null;
        const INP = rt.upload(inp), OUT = rt.pool.acquire(M * N * 4);
        const BIAS = bias ? rt.upload(bias) : undefined;
        matmulQuantForward(rt, { out: OUT, inp: INP, weight: w.buf, bias: BIAS }, { M, N, K, format });
        const got = await rt.readF32(OUT, M * N);
        const want = refForward(inp, w.values, bias, { M, N, K });
        expectClose(got, want, { ...sumTol(K, hasBias ? 4 : 0), label: `forward ${M}x${N}x${K} ${format}${hasBias ? " +bias" : ""}` });
        release(rt, INP, OUT, ...(BIAS ? [BIAS] : []));
        rt.pool.destroy(w.buf);
      }
    }
  });

  test("rejects sizes it cannot dispatch", async () => {
    const rt = await gpuRuntime();
    const b = rt.pool.acquire(64);
    expect(() => matmulQuantForward(rt, { out: b, inp: b, weight: b }, { M: 0, N: 1, K: 1, format: "nf4" })).toThrow(/M = 0/);
    expect(() => matmulQuantForward(rt, { out: b, inp: b, weight: b }, { M: 1, N: 1, K: 1, format: "fp4" as QuantFormat })).toThrow(/unknown format/);
    rt.pool.release(b);
  });
});

describe("matmul_quant_backward_input", () => {
  test("writes (and with accumulate adds) dout · dequant(W), every format", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("matmul-quant-dinp");
    let i = 0;
    for (const format of QUANT_FORMATS) {
      for (const [M, N, K] of SIZES) {
        const accumulate = i++ % 2 === 1;
        const w = await makeWeight(rt, rng, N, K, format);
        const dout = rng.normalF32(M * N);
        const init = rng.normalF32(M * K);
        const DOUT = rt.upload(dout), DINP = rt.upload(init);
        matmulQuantBackwardInput(rt, { dinp: DINP, dout: DOUT, weight: w.buf }, { M, N, K, format, accumulate });
        const got = await rt.readF32(DINP, M * K);
        const want = refBackward(dout, new Float64Array(M * K), w.values, { M, N, K }).dinp;
        if (accumulate) for (let j = 0; j < want.length; j++) want[j] += init[j];
        expectClose(got, want, { ...sumTol(N, accumulate ? 4 : 0), label: `dinp ${M}x${N}x${K} ${format} accumulate=${accumulate}` });
        release(rt, DOUT, DINP);
        rt.pool.destroy(w.buf);
      }
    }
  });

  test("the reference input gradient equals central finite differences of the reference forward", () => {
    const rng = testRng("matmul-quant-fd");
    const M = 5, N = 9, K = 70;
    const raw = rng.normalF32(N * K);
    const W = dequantizeRef(quantizeRef(raw, "nf4"), N * K, "nf4");
    const inp = Float64Array.from(rng.normalF32(M * K));
    const dout = rng.normalF32(M * N);
    const loss = (x: Float64Array) => refForward(x, W, null, { M, N, K }).reduce((s, v, j) => s + v * dout[j], 0);
    const { dinp } = refBackward(dout, inp, W, { M, N, K });
    const h = 1e-4;
    for (const j of rng.sample(M * K, 12)) {
      const x = inp.slice();
      x[j] += h;
      const up = loss(x);
      x[j] -= 2 * h;
      const fd = (up - loss(x)) / (2 * h);
      expect(Math.abs(fd - dinp[j])).toBeLessThan(1e-7 * (1 + Math.abs(dinp[j])));
    }
  });
});

describe("estimateMemory", () => {
  const qwen32b: MemoryDims = {
    modelType: "qwen2", vocabSize: 152064, hiddenSize: 5120, nLayers: 64, nHeads: 40, nKvHeads: 8, headDim: 128,
    intermediateSize: 27648, maxPositions: 32768, tieWordEmbeddings: false, attentionBias: true,
  };

  test("weights follow the format's bytes; per-prompt terms scale with the micro-batch", () => {
    const base = { loraRank: 16, tokens: 160, microBatch: 1, head: false };
    const nf4 = estimateMemory(qwen32b, { ...base, format: "nf4" });
    const dq = estimateMemory(qwen32b, { ...base, format: "nf4dq" });
    const none = estimateMemory(qwen32b, { ...base, format: "none" });
    const linear = 64 * (5120 * 5120 * 2 + 1024 * 5120 * 2 + 3 * 27648 * 5120);
    const rest = none.weights - linear * 2; // embeddings, norms, biases
    // embeddings (bf16), two norms per layer + the final one, q/k/v biases (f32)
    expect(rest).toBe(152064 * 5120 * 2 + 4 * (64 * (2 * 5120 + 5120 + 2 * 1024) + 5120));
    expect(nf4.weights - rest).toBeCloseTo(linear * 4.5 / 8, -6);
    expect(dq.weights).toBeLessThan(nf4.weights);
    expect(nf4.trainable).toBe(16 * 64 * 16 * (2 * 5120 + 5120 + 1024));
    const eight = estimateMemory(qwen32b, { ...base, format: "nf4", microBatch: 8 });
    expect(eight.total - nf4.total).toBeCloseTo(7 * (nf4.activationsPerPrompt + nf4.workspacePerPrompt) * 1.25, -2);
    const rc = estimateMemory(qwen32b, { ...base, format: "nf4", recompute: true });
    expect(rc.activationsPerPrompt).toBeLessThan(nf4.activationsPerPrompt / 10);
  });

  test("planMemory picks the largest micro-batch that fits, recomputing only when it must", () => {
    const opts = { format: "nf4dq" as const, loraRank: 16, tokens: 160, head: false };
    const GB = 2 ** 30;
    const plan = planMemory(qwen32b, opts, 80 * GB)!;
    expect(plan.recompute).toBe(false);
    expect(plan.estimate.total).toBeLessThanOrEqual(80 * GB);
    if (plan.microBatch < 32) {
      expect(estimateMemory(qwen32b, { ...opts, microBatch: plan.microBatch + 1 }).total).toBeGreaterThan(80 * GB);
    }
    const tight = planMemory(qwen32b, opts, 24 * GB)!;
    expect(tight.estimate.total).toBeLessThanOrEqual(24 * GB);
    expect(planMemory(qwen32b, opts, 8 * GB)).toBeNull();
  });
});
