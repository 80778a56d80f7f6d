// What every architecture family shares: the batch layout, the forward-pass contract, and
// loading checkpoint tensors onto the GPU one at a time.
//
// Batch layout: B prompts right-padded to T tokens; ids and positions are u32 [B, T] (position t for
// token t), lengths u32 [B]. Padded tokens never influence valid ones (causal attention stops at
// each sequence's length), so a prompt gives the same result alone or in any batch.
import { bf16ToF32, f16ToF32, type Tensor as StoredTensor } from "../src/io/safetensors.ts";
import type { ModelConfig } from "../src/io/config.ts";
import type { GpuBuffer, Runtime } from "../src/gpu/runtime.ts";
import { fromArray, scope, Tensor, weight, type DType } from "../src/tensor/tensor.ts";
import { checkpoint } from "../src/tensor/autodiff.ts";
import type { WeightDtype } from "../src/ops/matmul.ts";
import { isQuantFormat, type QuantFormat } from "../src/ops/quant.ts";
import { storedBytes, transpose, widenToF32 } from "../src/ops/transpose.ts";
import { linear } from "../src/tensor/ops.ts";
import { createLoraAdapter, disposeLoraAdapter, frozenLinear, loraLinear, quantizeTensor, type LoraAdapter, type LoraConfig } from "../src/tensor/lora.ts";
import { Rng } from "../src/util/random.ts";

/**
 * Where a model's tensors come from: a Checkpoint (safetensors files, memory mapped), or
 * anything with the same reading methods (the benchmarks' random-weight models).
 */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  get(name: string): StoredTensor;
}

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

export interface LoadOptions {
  /** store the frozen linear weights quantized (embeddings and the LM head stay as stored) */
  quant?: QuantFormat | "none";
  /** W_Q/W_K are trained through LoRA adapters: quantize them like the other weights */
  lora?: boolean;
  /** where quantized weights may come from instead of the checkpoint (the on-disk cache, src/cli/load.ts) */
  quantStore?: QuantStore;
}

/**
 * Quantized weights kept elsewhere (src/io/quant_cache.ts on disk): a loader asks for each weight it
 * would quantize before it reads the checkpoint, and hands over each one it had to quantize itself.
 */
export interface QuantStore {
  /** the weight `name` [N, K] in `format`, uploaded as a persistent tensor; null when not held */
  take(name: string, shape: readonly number[], format: QuantFormat): Tensor | null;
  /** a weight the loader just quantized (still the model's: the store only reads it) */
  put(name: string, t: Tensor): void;
}

/** Parameters of a model from its config (embeddings and head counted once when tied). */
export function parameterCount(c: ModelConfig): number {
  const C = c.hiddenSize;
  const attn = C * c.nHeads * c.headDim * 2 + C * c.nKvHeads * c.headDim * 2;
  const mlp = (c.modelType === "gpt2" ? 2 : 3) * C * c.intermediateSize;
  return c.nLayers * (attn + mlp) + c.vocabSize * C * (c.tieWordEmbeddings ? 1 : 2);
}

/** Quantizes a just-loaded weight (and frees the original) when the options ask for it. */
export function maybeQuantize(t: Tensor, opts: LoadOptions, trainedQK = false): Tensor {
  const q = quantFormatFor(opts, trainedQK);
  if (!q) return t;
  const out = quantizeTensor(t, q, t.name);
  t.dispose();
  return out;
}

/** The format a matrix is stored in under these options (null: as loaded). W_Q/W_K only with LoRA. */
export function quantFormatFor(opts: LoadOptions, trainedQK = false): QuantFormat | null {
  const q = opts.quant;
  if (!q || q === "none" || (trainedQK && !opts.lora)) return null;
  return q;
}

/**
 * A linear layer's matrix `name` [N, K]: taken from opts.quantStore when the options quantize it and
 * the store holds it (then `load` never runs and the checkpoint tensor is never read), else `load()`ed,
 * quantized when the options ask, and handed to the store.
 */
export function loadMatrix(opts: LoadOptions, name: string, shape: readonly number[], load: () => Tensor, trainedQK = false): Tensor {
  const format = quantFormatFor(opts, trainedQK);
  if (!format) return load();
  const cached = opts.quantStore?.take(name, shape, format);
  if (cached) return cached;
  const t = maybeQuantize(load(), opts, trainedQK);
  opts.quantStore?.put(name, t);
  return t;
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

const DTYPES: Record<string, WeightDtype> = { F32: "f32", BF16: "bf16", F16: "f16" };

/**
 * Uploads one checkpoint tensor as a weight, optionally transposed ([rows, cols] → [cols, rows],
 * GPT-2's Conv1D) and/or widened to f32. The host never loops over the elements: the stored bytes
 * (a view of the memory map) are uploaded as they are, and transposing and widening run on the GPU
 * (kernels/transpose.wgsl, bit-exact) through a pooled scratch buffer.
 */
export function loadWeight(
  rt: Runtime,
  ckpt: TensorSource,
  name: string,
  opts: { transpose?: boolean; f32?: boolean; rename?: string; expectShape?: readonly number[] } = {},
): Tensor {
  const label = opts.rename ?? name;
  if (opts.transpose) {
    const cuts = new TransposedCuts(rt, ckpt, name, opts.expectShape);
    try {
      return cuts.whole(!!opts.f32, label);
    } finally {
      cuts.release();
    }
  }
  const t = ckpt.get(name);
  const shape = t.shape.slice();
  checkShape(name, shape, opts.expectShape);
  const dtype = DTYPES[t.dtype];
  if (!opts.f32 || dtype === "f32") return weight(rt, padTo4Bytes(t.data), shape, dtype, label);
  const src = rt.upload(padTo4Bytes(t.data), `${label} (as stored)`);
  const out = rt.pool.allocate(t.data.length * 4, label);
  widenToF32(rt, { out, src }, { n: t.data.length, srcDtype: dtype });
  rt.pool.release(src); // reused only by dispatches recorded later
  return new Tensor(rt, out, shape, "f32", label, true);
}

/**
 * A 2-D checkpoint tensor [rows, cols] cut into transposed column windows on the GPU: window
 * [col0, col0 + n) becomes a weight [n, rows] (nn.Linear layout) in f32 or the stored dtype. The
 * tensor is read and uploaded (as stored) on the first cut only; release() returns the upload.
 * GPT-2 cuts its fused c_attn [C, 3C] into W_Q, W_K, W_V this way.
 */
export class TransposedCuts {
  private stored: StoredTensor | null = null;
  private src: GpuBuffer | null = null;

  constructor(
    private readonly rt: Runtime,
    private readonly ckpt: TensorSource,
    readonly name: string,
    private readonly expectShape?: readonly number[],
  ) {}

  /** columns [col0, col0 + n) as a weight [n, rows] in f32 or the stored dtype */
  cut(col0: number, n: number, f32: boolean, name: string): Tensor {
    const stored = this.open();
    const [rows, cols] = stored.shape;
    const srcDtype = DTYPES[stored.dtype];
    const outDtype = f32 ? "f32" : srcDtype;
    const out = this.rt.pool.allocate(storedBytes(n * rows, outDtype), name);
    try {
      transpose(this.rt, { out, src: this.src! }, { rows, cols, col0, ncols: n, srcDtype, outDtype });
    } catch (e) {
      this.rt.pool.destroy(out);
      throw e;
    }
    return new Tensor(this.rt, out, [n, rows], outDtype, name, true);
  }

  /** the whole tensor transposed: [cols, rows] */
  whole(f32: boolean, name: string): Tensor {
    return this.cut(0, this.open().shape[1], f32, name);
  }

  private open(): StoredTensor {
    if (this.stored) return this.stored;
    const t = this.ckpt.get(this.name);
    if (t.shape.length !== 2) throw new Error(`cannot transpose ${this.name} of shape [${t.shape.join(",")}]`);
    checkShape(this.name, t.shape, this.expectShape);
    this.src = this.rt.upload(padTo4Bytes(t.data), `${this.name} (as stored)`);
    return (this.stored = t);
  }

  release(): void {
    if (this.src) this.rt.pool.release(this.src); // reused only by dispatches recorded later
    this.src = null;
    this.stored = null;
  }
}

function checkShape(name: string, shape: readonly number[], expect?: readonly number[]): void {
  if (expect && expect.join(",") !== shape.join(",")) {
    throw new Error(`checkpoint tensor ${name} has shape [${shape.join(",")}], expected [${expect.join(",")}]`);
  }
}

/** Uploads host data (f32) as a weight. */
export function uploadWeight(rt: Runtime, data: Float32Array, shape: number[], name: string): Tensor {
  return weight(rt, data, shape, "f32", name);
}

/** A checkpoint tensor as f32 on the host (small tensors: biases, norms). */
export function hostF32(ckpt: TensorSource, name: string): Float32Array {
  const t = ckpt.get(name);
  return t.dtype === "F32" ? (t.data as Float32Array).slice() : toF32(t.data as Uint16Array, DTYPES[t.dtype]);
}

export function toF32(bits: Uint16Array, dtype: DType): Float32Array {
  return dtype === "bf16" ? bf16ToF32(bits) : f16ToF32(bits);
}

/** [rows, cols] → [cols, rows] on the host (the tests' reference for kernels/transpose.wgsl). */
export function transpose2d<A extends Float32Array | Uint16Array>(src: A, rows: number, cols: number): A {
  const out = new (src.constructor as { new (n: number): A })(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

/** The data as a whole number of u32 words (rt.write drops a trailing half word): a copy only for an odd 16-bit count. */
function padTo4Bytes(data: Float32Array | Uint16Array): ArrayBufferView {
  if (data.byteLength % 4 === 0) return data;
  const padded = new Uint16Array(data.length + 1);
  padded.set(data);
  return padded;
}

export function checkNoExtraTensors(ckpt: TensorSource, used: Set<string>, family: string): void {
  const ignored = /(\.attn\.bias|\.attn\.masked_bias|rotary_emb\.inv_freq)$/;
  const extra = ckpt.names().filter((n) => !used.has(n) && !ignored.test(n));
  if (extra.length) {
    throw new Error(`${family} checkpoint has ${extra.length} tensors the model does not use: ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", ..." : ""}`);
  }
}
