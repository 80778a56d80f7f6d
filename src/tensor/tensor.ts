// GPU tensors: a pooled buffer, a shape, a storage dtype, a reference count.
//
// GPU memory is not garbage-collected, so tensors are freed deterministically:
// - every tensor starts with one reference, owned by the innermost `scope()` open when it was made;
//   the scope drops that reference when it ends, unless the tensor is returned or kept;
// - the autodiff tape retains the tensors a backward rule saved and drops them right after that
//   rule ran (src/tensor/autodiff.ts);
// - when the count reaches zero the buffer goes back to the pool (or is destroyed for weights).
// Storage dtypes: f32; bf16 and f16 pack two values per 32-bit word (element 2j in the low half),
// unpacked to f32 inside kernels; u32 for token ids, positions and indices; nf4, nf4dq, int8 for
// frozen quantized weights [N, K] (codes and block scales in one buffer, src/ops/quant.ts).
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";

export type DType = "f32" | "bf16" | "f16" | "u32" | "nf4" | "nf4dq" | "int8";

/** Quantized dtypes: codes plus block scales per element, without padding (exact size: quantizedBytes()). */
export const BYTES_PER_ELEMENT: Record<DType, number> = {
  f32: 4, bf16: 2, f16: 2, u32: 4, nf4: 0.5 + 4 / 64, nf4dq: 0.5 + 1 / 64 + 8 / (64 * 256), int8: 1 + 4 / 32,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let nextTensorId = 1;
const scopes: Tensor[][] = [];

export class Tensor {
  readonly id = nextTensorId++;
  refs = 1;
  /** set by the tape for tensors made by a recorded op (see autodiff.ts) */
  requiresGrad = false;
  /** accumulated gradient of a leaf that requires it */
  grad: Tensor | null = null;
  /** true for a leaf the user asked gradients for (a parameter) */
  isLeaf = false;
  /** the innermost scope open at creation still owns the creation reference */
  scopeOwned = false;
  /** another tensor's buffer seen under a second name (autodiff checkpoints): never freed through this one */
  borrowed = false;

  constructor(
    readonly rt: Runtime,
    public buf: GpuBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
    readonly name = "",
    /** weights: exact-size buffer, destroyed (not pooled) when released, and never owned by a scope */
    readonly persistent = false,
  ) {
    if (!persistent && scopes.length) {
      scopes[scopes.length - 1].push(this);
      this.scopeOwned = true;
    }
  }

  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return Math.ceil((this.size * BYTES_PER_ELEMENT[this.dtype]) / 4) * 4;
  }

  retain(): this {
    if (this.refs <= 0) throw new Error(`tensor ${this.describe()} used after it was freed`);
    this.refs++;
    return this;
  }

  dispose(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) {
      if (this.persistent && !this.borrowed) this.rt.pool.destroy(this.buf);
      else if (!this.borrowed) this.rt.pool.release(this.buf);
      this.grad?.dispose();
      this.grad = null;
    }
  }

  /**
   * The owner is done with this tensor before its scope ends: drops the creation reference now
   * (others that retained it, such as the tape, keep theirs).
   */
  free(): void {
    if (this.scopeOwned) this.scopeOwned = false;
    this.dispose();
  }

  get alive(): boolean {
    return this.refs > 0;
  }

  describe(): string {
    return `${this.name || `t${this.id}`}[${this.shape.join(",")}] ${this.dtype}`;
  }

  /** Reads an f32 tensor back to the CPU. */
  async toF32(): Promise<Float32Array> {
    if (this.dtype !== "f32") throw new Error(`toF32: ${this.describe()} is not f32`);
    return this.rt.readF32(this.buf, this.size);
  }

  async toU32(): Promise<Uint32Array> {
    if (this.dtype !== "u32") throw new Error(`toU32: ${this.describe()} is not u32`);
    return new Uint32Array(await this.rt.read(this.buf, this.size * 4));
  }
}

/** A second tensor over `t`'s buffer, owned by nobody: disposing it never frees the buffer. */
export function borrow(t: Tensor): Tensor {
  const b = untracked(() => new Tensor(t.rt, t.buf, t.shape, t.dtype, `${t.name}-borrowed`));
  b.borrowed = true;
  return b;
}

/** A new tensor with uninitialised contents from the pool. */
export function empty(rt: Runtime, shape: readonly number[], dtype: DType = "f32", name = ""): Tensor {
  const bytes = Math.max(4, Math.ceil((numel(shape) * BYTES_PER_ELEMENT[dtype]) / 4) * 4);
  return new Tensor(rt, rt.pool.acquire(bytes, name || "tensor"), shape, dtype, name);
}

/** A new tensor holding `data` (f32 from Float32Array, u32 from Uint32Array). */
export function fromArray(rt: Runtime, data: Float32Array | Uint32Array, shape: readonly number[], name = ""): Tensor {
  if (data.length !== numel(shape)) throw new Error(`fromArray ${name}: ${data.length} values for shape [${shape.join(",")}]`);
  const dtype: DType = data instanceof Uint32Array ? "u32" : "f32";
  return new Tensor(rt, rt.upload(data, name || "tensor"), shape, dtype, name);
}

/** A weight: exact-size buffer outside the pool, never freed by a scope. `data` is the raw storage. */
export function weight(rt: Runtime, data: ArrayBufferView, shape: readonly number[], dtype: DType, name: string): Tensor {
  const b = rt.pool.allocate(data.byteLength, name);
  rt.write(b, data);
  return new Tensor(rt, b, shape, dtype, name, true);
}

/**
 * Runs `fn`; every non-persistent tensor created inside and not returned (alone, in an array, or
 * as a value of a returned object) loses the reference its creation gave it.
 */
export function scope<T>(fn: () => T): T {
  scopes.push([]);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scopes.pop()!, undefined);
    throw e;
  }
  closeScope(scopes.pop()!, result);
  return result;
}

/** Async version of scope(). Do not interleave two scopeAsync calls concurrently. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const made: Tensor[] = [];
  scopes.push(made);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    scopes.splice(scopes.indexOf(made), 1);
    closeScope(made, undefined);
    throw e;
  }
  scopes.splice(scopes.indexOf(made), 1);
  closeScope(made, result);
  return result;
}

/** Runs fn with no scope open: the tensors it makes are owned by the caller alone. */
export function untracked<T>(fn: () => T): T {
  const saved = scopes.splice(0);
  try {
    return fn();
  } finally {
    scopes.push(...saved);
  }
}

function closeScope(made: Tensor[], result: unknown): void {
  const keep = new Set<Tensor>();
  const collect = (v: unknown) => {
    if (v instanceof Tensor) keep.add(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object" && !(v instanceof Promise)) Object.values(v).forEach(collect);
  };
  collect(result);
  for (const t of made) {
    if (!t.scopeOwned) continue; // freed early by its owner
    if (!keep.has(t)) {
      t.scopeOwned = false;
      t.dispose();
    } else if (scopes.length) scopes[scopes.length - 1].push(t); // hand over to the enclosing scope
    else t.scopeOwned = false; // now owned by the caller alone
  }
}
