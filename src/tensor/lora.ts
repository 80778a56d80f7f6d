// LoRA and frozen linear layers as differentiable tensor ops (the autodiff rules live with them, as
// in src/tensor/ops.ts), over a base weight W [N, K] stored as f32, bf16, f16 (src/ops/matmul.ts) or
// quantized nf4, nf4dq, int8 (src/ops/quant.ts). W never gets a gradient.
//
//   frozenLinear  y [.., N] = x [.., K] · Wᵀ (+ bias)                  gradient into x only
//   loraLinear    y = x · Wᵀ (+ bias) + s · (x · Aᵀ) · Bᵀ,  s = alpha / r   gradients into x, A, B (and a
//                 bias that requires one)
// Adapters (PEFT's LoRA, default init): A [r, K] (lora_A.weight) kaiming-uniform with a = √5, i.e.
// U(-1/√K, 1/√K) (gain √(2/(1+a²)) = √(1/3), bound = gain·√(3/fan_in)); B [N, r] (lora_B.weight) zero,
// so a fresh adapter leaves the base output unchanged (bit for bit: the LoRA term adds exact zeros).
// Both are f32 parameters (persistent tensors).
//
// loraLinear forward, rows M = tokens:
//   u = x · Aᵀ [M, r];  us = s · u (saved);  v = us · Bᵀ [M, N];  y = base + v
// backward from dy [M, N]:
//   dB = dyᵀ · us (= s · dyᵀ · u);  du = s · dy · B [M, r];  dA = duᵀ · x;  dx = dy · W + du · A
// Saved for the backward: x and us [M, r] (W, A, B are persistent). Float64 reference:
// src/ref/quant.ts loraForward / loraBackward.
import { axpy, scaleInto } from "../ops/axpy.ts";
import {
  matmulBackwardInput, matmulBackwardWeight, matmulForward, matmulWeightGradScratchBytes, matmulWeightGradSplits, type WeightDtype,
} from "../ops/matmul.ts";
import { isQuantFormat, matmulQuantBackwardInput, matmulQuantForward, quantizeToNewBuffer, type QuantFormat } from "../ops/quant.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import type { Rng } from "../util/random.ts";
import { parameter, record, recording, type Grad } from "./autodiff.ts";
import { empty, Tensor, untracked, weight } from "./tensor.ts";

export interface LoraConfig {
  /** rank r */
  r: number;
  /** scaling numerator: the update is (alpha / r) · B · A */
  alpha: number;
}

export interface LoraAdapter {
  /** f32 [r, K], a parameter */
  A: Tensor;
  /** f32 [N, r], a parameter */
  B: Tensor;
  r: number;
  alpha: number;
  /** alpha / r */
  scale: number;
}

/** A fresh adapter for a weight [N, K]: A kaiming-uniform (a = √5) from rng, B = 0. */
export function createLoraAdapter(rt: Runtime, dims: { N: number; K: number }, cfg: LoraConfig, rng: Rng, name: string): LoraAdapter {
  const { N, K } = dims;
  const { r, alpha } = cfg;
  if (!Number.isInteger(r) || r < 1) throw new Error(`LoRA rank ${r} must be a positive integer`);
  if (!(alpha > 0)) throw new Error(`LoRA alpha ${alpha} must be positive`);
  const bound = 1 / Math.sqrt(K);
  const a = new Float32Array(r * K);
  for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
  const A = parameter(weight(rt, a, [r, K], "f32", `${name}.lora_A.weight`));
  const B = parameter(weight(rt, new Float32Array(N * r), [N, r], "f32", `${name}.lora_B.weight`));
  return { A, B, r, alpha, scale: alpha / r };
}

/** Frees an adapter's tensors (and their gradients). */
export function disposeLoraAdapter(ad: LoraAdapter): void {
  ad.A.dispose();
  ad.B.dispose();
}

/**
 * A NEW persistent tensor [N, K] holding the f32/bf16/f16 weight w quantized on the GPU as `format`.
 * w itself is left alone; the work is submitted before returning, so w may be freed (even a
 * persistent one, whose buffer is destroyed at once) to stream a checkpoint tensor by tensor.
 */
export function quantizeTensor(w: Tensor, format: QuantFormat, name = w.name): Tensor {
  if (w.shape.length !== 2) throw new Error(`quantizeTensor: ${w.describe()} is not a 2-D weight`);
  if (w.dtype !== "f32" && w.dtype !== "bf16" && w.dtype !== "f16") throw new Error(`quantizeTensor: cannot quantize ${w.describe()}`);
  const [N, K] = w.shape;
  const buf = quantizeToNewBuffer(w.rt, w.buf, { N, K, format, srcDtype: w.dtype }, name);
  w.rt.flush();
  return new Tensor(w.rt, buf, [N, K], format, name, true);
}

interface Dims {
  M: number;
  N: number;
  K: number;
}

function dimsOf(op: string, x: Tensor, W: Tensor): Dims {
  const K = x.shape[x.shape.length - 1];
  if (W.shape.length !== 2 || W.shape[1] !== K) throw new Error(`${op}: x ${x.describe()} does not match W ${W.describe()}`);
  return { M: x.size / K, N: W.shape[0], K };
}

/** out = inp · Wᵀ (+ bias) for any base dtype */
function baseForward(rt: Runtime, out: GpuBuffer, inp: GpuBuffer, W: Tensor, bias: GpuBuffer | undefined, d: Dims): void {
  if (isQuantFormat(W.dtype)) matmulQuantForward(rt, { out, inp, weight: W.buf, bias }, { ...d, format: W.dtype });
  else if (W.dtype === "u32") throw new Error(`linear: ${W.describe()} is not a weight`);
  else matmulForward(rt, { out, inp, weight: W.buf, bias }, { ...d, dtype: W.dtype as WeightDtype });
}

/** dinp (= or +=) dout · W for any base dtype */
function baseBackwardInput(rt: Runtime, dinp: GpuBuffer, dout: GpuBuffer, W: Tensor, d: Dims, accumulate: boolean): void {
  if (isQuantFormat(W.dtype)) matmulQuantBackwardInput(rt, { dinp, dout, weight: W.buf }, { ...d, format: W.dtype, accumulate });
  else matmulBackwardInput(rt, { dinp, dout, weight: W.buf }, { ...d, dtype: W.dtype as WeightDtype, accumulate });
}

function tensorGrad(g: Grad | null, op: string): Tensor {
  if (g === null || typeof g === "number") throw new Error(`${op}: needs a tensor gradient`);
  return g;
}

/** y [.., N] = x [.., K] · Wᵀ (+ bias), W frozen in any dtype; the gradient flows into x only. */
export function frozenLinear(x: Tensor, W: Tensor, bias?: Tensor): Tensor {
  const rt = x.rt;
  const d = dimsOf("frozenLinear", x, W);
  const y = empty(rt, [...x.shape.slice(0, -1), d.N], "f32", `${W.name}-out`);
  baseForward(rt, y.buf, x.buf, W, bias?.buf, d);
  record("frozen_linear", [x], [y], [W], ([g]) => {
    const dy = tensorGrad(g, "frozen_linear");
    const dx = empty(rt, x.shape, "f32", "dx");
    baseBackwardInput(rt, dx.buf, dy.buf, W, d, false);
    return [dx];
  });
  return y;
}

/** dweight [N', K'] (zeroed, then +=) doutᵀ · inp over M rows, with dbias += Σ dout when given */
function weightGrad(rt: Runtime, dweight: Tensor, dout: GpuBuffer, inp: GpuBuffer, dbias: Tensor | null, d: Dims): void {
  rt.clear(dweight.buf, dweight.byteLength);
  if (dbias) rt.clear(dbias.buf, dbias.byteLength);
  const splits = matmulWeightGradSplits(d);
  const bytes = matmulWeightGradScratchBytes({ ...d, splits });
  const scratch = bytes > 0 ? rt.pool.acquire(bytes, "lora dW scratch") : undefined;
  matmulBackwardWeight(rt, { dweight: dweight.buf, dout, inp, dbias: dbias?.buf, scratch }, { ...d, splits });
  if (scratch) rt.pool.release(scratch);
}

/**
 * y = x · Wᵀ (+ bias) + (alpha/r) · (x · Aᵀ) · Bᵀ with W frozen (f32, bf16, f16, nf4, nf4dq, int8) and
 * the adapter's A, B trained. bias (f32 [N]) gets a gradient only if it requires one.
 */
export function loraLinear(x: Tensor, W: Tensor, ad: LoraAdapter, bias?: Tensor): Tensor {
  const rt = x.rt;
  const d = dimsOf("loraLinear", x, W);
  const { M, N, K } = d;
  const r = ad.r;
  if (ad.A.shape.join(",") !== `${r},${K}` || ad.B.shape.join(",") !== `${N},${r}`) {
    throw new Error(`loraLinear: adapter ${ad.A.describe()}, ${ad.B.describe()} does not fit W ${W.describe()}`);
  }
  const y = empty(rt, [...x.shape.slice(0, -1), N], "f32", `${W.name}-out`);
  baseForward(rt, y.buf, x.buf, W, bias?.buf, d);
  const inputs = bias ? [x, ad.A, ad.B, bias] : [x, ad.A, ad.B];
  const rec = recording(inputs);
  const us = rec ? untracked(() => empty(rt, [M, r], "f32", "lora-us")) : null;
  const u = rt.pool.acquire(M * r * 4, "lora-u");
  const usBuf = us ? us.buf : rt.pool.acquire(M * r * 4, "lora-us");
  const v = rt.pool.acquire(M * N * 4, "lora-v");
  matmulForward(rt, { out: u, inp: x.buf, weight: ad.A.buf }, { M, N: r, K });
  scaleInto(rt, usBuf, u, ad.scale, M * r);
  matmulForward(rt, { out: v, inp: usBuf, weight: ad.B.buf }, { M, N, K: r });
  axpy(rt, y.buf, v, 1, M * N);
  // released buffers are reused only by dispatches recorded later, which run after these
  for (const b of us ? [u, v] : [u, usBuf, v]) rt.pool.release(b);
  if (!us) return y;

  const { A, B, scale } = ad;
  const saved = x.requiresGrad ? [x, us, W] : [x, us];
  record("lora_linear", inputs, [y], saved, ([g], needs) => {
    const dy = tensorGrad(g, "lora_linear");
    const [needX, needA, needB, needBias = false] = needs;
    let du: GpuBuffer | null = null;
    if (needX || needA) {
      const dus = rt.pool.acquire(M * r * 4, "lora-dus");
      du = rt.pool.acquire(M * r * 4, "lora-du");
      matmulBackwardInput(rt, { dinp: dus, dout: dy.buf, weight: B.buf }, { M, N, K: r }); // dy · B
      scaleInto(rt, du, dus, scale, M * r);
      rt.pool.release(dus);
    }
    let dA: Tensor | null = null;
    if (needA) {
      dA = empty(rt, A.shape, "f32", `d${A.name}`);
      weightGrad(rt, dA, du!, x.buf, null, { M, N: r, K });
    }
    let dB: Tensor | null = null;
    let db: Tensor | null = null;
    if (needB || needBias) {
      dB = empty(rt, B.shape, "f32", `d${B.name}`);
      db = needBias ? empty(rt, bias!.shape, "f32", `d${bias!.name}`) : null;
      weightGrad(rt, dB, dy.buf, us.buf, db, { M, N, K: r });
      if (!needB) {
        dB.dispose();
        dB = null;
      }
    }
    let dx: Tensor | null = null;
    if (needX) {
      dx = empty(rt, x.shape, "f32", "dx");
      baseBackwardInput(rt, dx.buf, dy.buf, W, d, false);
      matmulBackwardInput(rt, { dinp: dx.buf, dout: du!, weight: A.buf }, { M, N: r, K, accumulate: true }); // += du · A
    }
    if (du) rt.pool.release(du);
    return bias ? [dx, dA, dB, db] : [dx, dA, dB];
  });
  us.dispose(); // the tape holds it now
  return y;
}
