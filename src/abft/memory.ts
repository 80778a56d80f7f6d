// GPU memory estimate of a training run, before anything is loaded: the weights in their storage
// format, the trained parameters with their gradients and Adam state, and the activations the tape
// keeps per prompt; from it, the micro-batch (prompts per pass) and whether to recompute activations.
//
// Letters: C hidden, L layers, NH/NKV query/key-value heads, HS head size, I MLP width, V vocabulary,
// T tokens per prompt (the padded length), r LoRA rank, Nq = NH·HS, Nkv = NKV·HS. All in bytes.
//
// weights   = L · [ W(Nq, C) (q) + W(Nkv, C) (k) + W(Nkv, C) (v) + W(C, Nq) (o) + 3·W(I, C) (MLP; gpt2: 2) ]
//             where W(N, K) = quantizedBytes(N, K, format), or N·K·storedBytes for "none"; with full
//             Q/K training (r = 0) q and k are f32 (4 bytes/value) whatever the format;
//           + 4·(norm and bias vectors)  + V·C·storedBytes (embeddings; gpt2 adds the position table)
//           + the LM head V·C·storedBytes when untied and `head` (ABFT itself never reads it)
// trainable = 16 bytes per trained value (the f32 value, its .grad, Adam m and v):
//             LoRA: L · r · (C + Nq + C + Nkv) values (A and B of W_Q and W_K), value included;
//             full: L · (Nq + Nkv) · C values, 12 bytes each (the value is already in `weights`)
// activationsPerPrompt = 4 · T · L · (3C + Nq + 2Nkv + 2r + 2I + NH·T + NH + 2)      (llama, qwen2)
//                        4 · T · L · (3C + Nq + 2Nkv + 2r + I + NH·T + NH + 4)       (gpt2: one MLP input)
//   what the recorded ops save per layer and token: the norm inputs x, x1 and the normed h (C each),
//   q, k, v after rotary (Nq + 2Nkv), the LoRA products s·x·Aᵀ (r each for Q and K), the MLP's
//   gate and up (2I; gpt2: the gelu input, I), the attention probabilities [NH, T, T] (NH·T per
//   token), the last-row attention of the ABFT loss (NH), and the norms' rstd (and gpt2's mean).
//   With recompute only each layer's input is kept (4·T·L·C) plus one layer's full set.
// workspacePerPrompt = 4 · T · (3I + 4C + 2Nq + 2Nkv + 2·NH·T): the transients alive inside one
//   layer's backward (MLP gradients, dscores and the attention gradient, dq/dk/dv, the residual
//   gradient), an upper estimate.
// total = weights + trainable + microBatch · (activationsPerPrompt + workspacePerPrompt) · slack
//         + 64 MiB (parameter arena, staging, bind groups)
// slack (default 1.25) covers the buffer pool's size classes (a pooled buffer is rounded up by at
// most 25%, src/gpu/buffers.ts).
import type { ModelConfig } from "../io/config.ts";
import { quantizedBytes, type QuantFormat } from "../ops/quant.ts";

export type MemoryDims = Pick<
  ModelConfig,
  "modelType" | "vocabSize" | "hiddenSize" | "nLayers" | "nHeads" | "nKvHeads" | "headDim" | "intermediateSize" | "maxPositions" | "tieWordEmbeddings" | "attentionBias"
>;

export interface MemoryOptions {
  /** storage of the frozen linear weights: a quantized format, or "none" (as stored) */
  format: QuantFormat | "none";
  /** LoRA rank on W_Q and W_K of every layer; 0 trains W_Q and W_K themselves (f32) */
  loraRank: number;
  /** tokens per prompt (T, padded) */
  tokens: number;
  /** prompts per forward/backward pass */
  microBatch: number;
  /** bytes per value of weights kept as stored (default 2: bf16/f16 checkpoints) */
  storedBytes?: number;
  /** keep the LM head on the GPU (default true; ABFT does not need it) */
  head?: boolean;
  /** keep only each layer's input and recompute a layer's activations in the backward */
  recompute?: boolean;
  /** factor on per-prompt memory for the pool's size classes (default 1.25) */
  slack?: number;
}

export interface MemoryEstimate {
  weights: number;
  trainable: number;
  activationsPerPrompt: number;
  workspacePerPrompt: number;
  /** fixed runtime overhead */
  overhead: number;
  total: number;
}

const OVERHEAD = 64 * 2 ** 20;

/** Bytes of the run described by dims and opts (formula in the header). */
export function estimateMemory(dims: MemoryDims, opts: MemoryOptions): MemoryEstimate {
  const { hiddenSize: C, nLayers: L, nHeads: NH, nKvHeads: NKV, headDim: HS, intermediateSize: I, vocabSize: V } = dims;
  const { format, loraRank: r, tokens: T, microBatch } = opts;
  const stored = opts.storedBytes ?? 2;
  const gpt2 = dims.modelType === "gpt2";
  const Nq = NH * HS, Nkv = NKV * HS;
  const W = (N: number, K: number) => (format === "none" ? N * K * stored : quantizedBytes(N, K, format));

  const qk = r > 0 ? W(Nq, C) + W(Nkv, C) : 4 * (Nq + Nkv) * C;
  const perLayer = qk + W(Nkv, C) + W(C, Nq) + (gpt2 ? 2 : 3) * W(I, C);
  const vectors = L * (2 * C * (gpt2 ? 2 : 1) + (dims.attentionBias ? Nq + 2 * Nkv : 0) + (gpt2 ? C + I + C : 0)) + C * (gpt2 ? 2 : 1);
  let weights = L * perLayer + 4 * vectors + V * C * stored;
  if (gpt2) weights += dims.maxPositions * C * stored;
  if ((opts.head ?? true) && !dims.tieWordEmbeddings) weights += V * C * stored;

  const trainable = r > 0 ? 16 * L * r * (2 * C + Nq + Nkv) : 12 * L * (Nq + Nkv) * C;

  const perToken = 3 * C + Nq + 2 * Nkv + 2 * r + (gpt2 ? I + 4 : 2 * I + 2) + NH * T + NH;
  const activationsPerPrompt = opts.recompute ? 4 * T * (L * C + perToken) : 4 * T * L * perToken;
  const workspacePerPrompt = 4 * T * (3 * I + 4 * C + 2 * Nq + 2 * Nkv + 2 * NH * T);
  const slack = opts.slack ?? 1.25;
  const total = weights + trainable + OVERHEAD + microBatch * (activationsPerPrompt + workspacePerPrompt) * slack;
  return { weights, trainable, activationsPerPrompt, workspacePerPrompt, overhead: OVERHEAD, total: Math.ceil(total) };
}

export interface MemoryPlan {
  microBatch: number;
  recompute: boolean;
  estimate: MemoryEstimate;
}

/**
 * The largest micro-batch (≤ pseudoBatch) whose estimate fits in budgetBytes without recomputation;
 * if not even one prompt fits, the largest with recomputation; null when even one prompt with
 * recomputation does not fit (the caller refuses, quoting estimateMemory(..., microBatch 1)).
 */
export function planMemory(dims: MemoryDims, opts: Omit<MemoryOptions, "microBatch" | "recompute">, budgetBytes: number, pseudoBatch = 32): MemoryPlan | null {
  for (const recompute of [false, true]) {
    let best: MemoryPlan | null = null;
    for (let m = 1; m <= pseudoBatch; m++) {
      const estimate = estimateMemory(dims, { ...opts, microBatch: m, recompute });
      if (estimate.total > budgetBytes) break;
      best = { microBatch: m, recompute, estimate };
    }
    if (best) return best;
  }
  return null;
}
