// What every architecture family shares: the batch layout, the forward-pass contract, the block
// loop and the LoRA plumbing. Loading checkpoint tensors is in models/weights.ts.
//
// Batch layout: B prompts right-padded to T tokens; ids and positions are u32 [B, T] (position t for
// token t), lengths u32 [B]. Padded tokens never influence valid ones (causal attention stops at
// each sequence's length), so a prompt gives the same result alone or in any batch.
import type { ModelConfig } from "../src/io/config.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import { fromArray, scope, type Tensor } from "../src/tensor/tensor.ts";
import { checkpoint } from "../src/tensor/autodiff.ts";
import { isQuantFormat } from "../src/ops/quant.ts";
import { linear } from "../src/tensor/ops.ts";
import { createLoraAdapter, disposeLoraAdapter, frozenLinear, loraLinear, type LoraAdapter, type LoraConfig } from "../src/tensor/lora.ts";
import { Rng } from "../src/util/random.ts";

export interface Batch {
  B: number;
  T: number;
  /** valid tokens of each prompt */
  lengths: number[];
  ids: Tensor; // u32 [B, T]
  positions: Tensor; // u32 [B, T]
  lengthsT: Tensor; // u32 [B]
}

/**
 * The padded length of a batch: the longest sequence, rounded up to a multiple of 16. Few distinct
 * lengths mean few distinct buffer sizes, so the same pooled buffers meet in the same kernels step
 * after step and their bind groups are reused (bun-webgpu never frees a bind group's memory).
 */
export const PAD_MULTIPLE = 16;

/** Pads token sequences into one batch on the GPU (pad id 0: never attended to). */
export function makeBatch(rt: Runtime, sequences: readonly (readonly number[])[], maxPositions?: number): Batch {
  const B = sequences.length;
  if (B === 0) throw new Error("makeBatch: no sequences");
  const longest = Math.max(...sequences.map((s) => s.length));
  const T = maxPositions === undefined ? Math.ceil(longest / PAD_MULTIPLE) * PAD_MULTIPLE : Math.min(Math.ceil(longest / PAD_MULTIPLE) * PAD_MULTIPLE, Math.max(longest, maxPositions));
  if (maxPositions !== undefined && longest > maxPositions) {
    throw new Error(`a prompt of ${longest} tokens exceeds the model's context of ${maxPositions} positions`);
  }
  const ids = new Uint32Array(B * T);
  const positions = new Uint32Array(B * T);
  sequences.forEach((s, b) => {
    if (s.length === 0) throw new Error(`makeBatch: sequence ${b} is empty`);
    ids.set(s, b * T);
    for (let t = 0; t < T; t++) positions[b * T + t] = t;
  });
  const lengths = sequences.map((s) => s.length);
  return {
    B,
    T,
    lengths,
    ids: fromArray(rt, ids, [B, T], "ids"),
    positions: fromArray(rt, positions, [B, T], "positions"),
    lengthsT: fromArray(rt, new Uint32Array(lengths), [B], "lengths"),
  };
}

export interface ForwardOptions {
  /** keep every layer's last-row attention [B, NH, T] (ABFT, head statistics) */
  attLast?: boolean;
  /** keep every layer's full attention probabilities [B, NH, T, T] (inspection; memory-hungry) */
  attFull?: boolean;
  /** keep the hidden states: the embeddings, after each block, the last one after the final norm (as HF) */
  hiddenStates?: boolean;
  /** keep only each block's input and recompute its activations in the backward (less memory, ~1/3 more work) */
  recompute?: boolean;
}

export interface ForwardResult {
  /** [B, T, C] after the final norm: what the LM head reads */
  hidden: Tensor;
  attLast: Tensor[];
  attFull: Tensor[];
  hiddenStates: Tensor[];
}

/** What one transformer block gives: the new residual stream and, when asked, its attention. */
export interface BlockOutput {
  x: Tensor;
  attLast: Tensor | null;
  attFull: Tensor | null;
}

/** Refuses a batch whose longest prompt exceeds the model's positions. */
export function checkContext(batch: Batch, config: ModelConfig): void {
  const longest = Math.max(...batch.lengths);
  if (longest > config.maxPositions) {
    throw new Error(`a prompt of ${longest} tokens exceeds ${config.modelType}'s ${config.maxPositions} positions`);
  }
}

/**
 * Runs the n blocks over the residual stream x (which it frees as it goes) and returns the stream
 * after the last one. One scope per block: its intermediates are freed at its end (the tape keeps
 * what it saved). With opts.recompute a block keeps only its input and runs again in the backward;
 * `trains(l)` says whether block l holds parameters that want gradients. Per-layer attention and
 * hidden states go into res as opts asks.
 */
export function runBlocks(
  x: Tensor,
  n: number,
  opts: ForwardOptions,
  res: ForwardResult,
  block: (l: number, xin: Tensor) => BlockOutput,
  trains: (l: number) => boolean,
): Tensor {
  for (let l = 0; l < n; l++) {
    const out = scope((): BlockOutput => {
      if (!opts.recompute) return block(l, x);
      const [x2, attLast = null] = checkpoint([x], trains(l), (xin) => {
        const o = block(l, xin);
        return o.attLast ? [o.x, o.attLast] : [o.x];
      });
      return { x: x2, attLast, attFull: null };
    });
    x.free();
    x = out.x;
    if (out.attLast) res.attLast.push(out.attLast);
    if (out.attFull) res.attFull.push(out.attFull);
    if (opts.hiddenStates && l < n - 1) res.hiddenStates.push(x.retain());
  }
  return x;
}

/** Whether any of these (optional) tensors wants a gradient. */
export function anyTrained(...ts: (Tensor | undefined)[]): boolean {
  return ts.some((t) => t?.requiresGrad);
}

/** Frees every tensor of a forward result (each is owned by the caller). */
export function disposeForward(res: ForwardResult): void {
  res.hidden?.free();
  for (const t of [...res.attLast, ...res.attFull, ...res.hiddenStates]) t.free();
}

/** A trainable tensor: the layer it belongs to, which one, and the f32 tensor. */
export interface QkParam {
  layer: number;
  kind: "q" | "k" | "q_bias" | "k_bias" | "q_lora_A" | "q_lora_B" | "k_lora_A" | "k_lora_B";
  /** the tensor's name in the base checkpoint (GPT-2: the c_attn block it was cut from) */
  name: string;
  tensor: Tensor;
}

export interface LanguageModel {
  config: ModelConfig;
  forward(batch: Batch, opts?: ForwardOptions): ForwardResult;
  /** the LM head weight [V, C] */
  headWeight(): Tensor;
  /** W_Q and W_K of every layer (and their biases when `withBias`), as f32 tensors */
  qkParams(withBias?: boolean): QkParam[];
  /** LoRA adapters on W_Q and W_K of every layer (made on the first call); their A and B tensors */
  attachLora(cfg: LoraConfig, seed: number): QkParam[];
  /** the adapters, when attached */
  loraConfig(): LoraConfig | null;
  /** frees every weight */
  dispose(): void;
}

/** Parameters of a model from its config (embeddings and head counted once when tied). */
export function parameterCount(c: ModelConfig): number {
  const C = c.hiddenSize;
  const attn = C * c.nHeads * c.headDim * 2 + C * c.nKvHeads * c.headDim * 2;
  const mlp = (c.modelType === "gpt2" ? 2 : 3) * C * c.intermediateSize;
  return c.nLayers * (attn + mlp) + c.vocabSize * C * (c.tieWordEmbeddings ? 1 : 2);
}

/** A linear layer whatever its weight's storage: LoRA when an adapter is given, quantized, or plain. */
export function project(x: Tensor, W: Tensor, bias?: Tensor, adapter?: LoraAdapter): Tensor {
  if (adapter) return loraLinear(x, W, adapter, bias);
  if (isQuantFormat(W.dtype)) return frozenLinear(x, W, bias);
  return linear(x, W, bias);
}

/** Adapters for W_Q and W_K of every layer, A drawn from a seeded generator (layer by layer). */
export function makeQkAdapters(
  rt: Runtime, layers: { q: Tensor; k: Tensor }[], cfg: LoraConfig, seed: number, name: (l: number, which: "q" | "k") => string,
): { q: LoraAdapter; k: LoraAdapter }[] {
  const rng = new Rng(seed);
  return layers.map((ly, l) => ({
    q: createLoraAdapter(rt, { N: ly.q.shape[0], K: ly.q.shape[1] }, cfg, rng, name(l, "q")),
    k: createLoraAdapter(rt, { N: ly.k.shape[0], K: ly.k.shape[1] }, cfg, rng, name(l, "k")),
  }));
}

export function loraParams(adapters: { q: LoraAdapter; k: LoraAdapter }[], name: (l: number) => string): QkParam[] {
  return adapters.flatMap((a, layer) => [
    { layer, kind: "q_lora_A" as const, name: name(layer), tensor: a.q.A },
    { layer, kind: "q_lora_B" as const, name: name(layer), tensor: a.q.B },
    { layer, kind: "k_lora_A" as const, name: name(layer), tensor: a.k.A },
    { layer, kind: "k_lora_B" as const, name: name(layer), tensor: a.k.B },
  ]);
}

export function disposeAdapters(adapters: { q: LoraAdapter; k: LoraAdapter }[] | null): void {
  for (const a of adapters ?? []) {
    disposeLoraAdapter(a.q);
    disposeLoraAdapter(a.k);
  }
}
