// Loading checkpoint tensors onto the GPU, one at a time: where tensors come from (TensorSource),
// the load options (quantization, LoRA, a store of already quantized weights), uploads as stored
// with transposing and widening on the GPU (kernels/transpose.wgsl), and the checks a loader makes.
import { bf16ToF32, f16ToF32, type Tensor as StoredTensor } from "../src/io/safetensors.ts";
import type { GpuBuffer, Runtime } from "../src/gpu/runtime.ts";
import { Tensor, weight, type DType } from "../src/tensor/tensor.ts";
import type { WeightDtype } from "../src/ops/matmul.ts";
import type { QuantFormat } from "../src/ops/quant.ts";
import { storedBytes, transpose, widenToF32 } from "../src/ops/transpose.ts";
import { quantizeTensor } from "../src/tensor/lora.ts";

/**
 * Where a model's tensors come from: a Checkpoint (safetensors files, memory mapped), or
 * anything with the same reading methods (the benchmarks' random-weight models).
 */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  get(name: string): StoredTensor;
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
  const full = load();
  const t = quantizeTensor(full, format, full.name);
  full.dispose();
  opts.quantStore?.put(name, t);
  return t;
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

function toF32(bits: Uint16Array, dtype: DType): Float32Array {
  return dtype === "bf16" ? bf16ToF32(bits) : f16ToF32(bits);
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
