// GPU buffers and their pool.
//
// bun-webgpu leaks when buffers are created per step, so temporary buffers are recycled: release()
// returns a buffer to a free list keyed by its size class, and the next acquire() of that class
// reuses it. Size classes are 2^k · {1, 1.25, 1.5, 1.75} (at most 25% waste), minimum 256 bytes.
// Long-lived buffers (weights) are allocated at their exact size and never pooled.
import { GpuOutOfMemoryError } from "./errors.ts";

let nextId = 1;

export class GpuBuffer {
  readonly id = nextId++;
  destroyed = false;
  constructor(
    readonly buffer: GPUBuffer,
    /** bytes actually allocated (>= what was asked for) */
    readonly size: number,
    readonly pooled: boolean,
    readonly label: string,
  ) {}
}

export const STORAGE_USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function sizeClass(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.floor(Math.log2(n));
  for (const f of [1, 1.25, 1.5, 1.75, 2]) if (p * f >= n) return Math.ceil((p * f) / 4) * 4;
  return 2 * p;
}

export interface PoolStats {
  /** bytes in buffers handed out and not yet released */
  inUse: number;
  /** bytes held in the free lists */
  free: number;
  /** highest inUse + free seen */
  peak: number;
  allocations: number;
  reuses: number;
}

export class BufferPool {
  private readonly freeLists = new Map<number, GpuBuffer[]>();
  private readonly onDestroy: ((b: GpuBuffer) => void)[] = [];
  /** set by the runtime: submits recorded work, which may still use a buffer about to be destroyed */
  beforeDestroy: () => void = () => {};
  readonly stats: PoolStats = { inUse: 0, free: 0, peak: 0, allocations: 0, reuses: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    /** called with a promise per allocation that resolves to an OOM error when the driver refused */
    private readonly track: (check: Promise<Error | null>) => void,
  ) {}

  /** Starts a new peak measurement from the current footprint. */
  resetPeak(): void {
    this.stats.peak = this.stats.inUse + this.stats.free;
  }

  /** Lets the runtime forget cached bind groups of a destroyed buffer. */
  addDestroyListener(fn: (b: GpuBuffer) => void): void {
    this.onDestroy.push(fn);
  }

  /** A storage buffer of at least `bytes` bytes from the pool. Contents are undefined. */
  acquire(bytes: number, label = "tmp"): GpuBuffer {
    const size = sizeClass(bytes);
    const list = this.freeLists.get(size);
    const reused = list?.pop();
    if (reused) {
      this.stats.free -= size;
      this.stats.inUse += size;
      this.stats.reuses++;
      return reused;
    }
    const b = this.create(size, STORAGE_USAGE(), label, true);
    return b;
  }

  /** Returns a pooled buffer to its free list (exact-size buffers are destroyed instead). */
  release(b: GpuBuffer): void {
    if (b.destroyed) return;
    if (!b.pooled) return this.destroy(b);
    this.stats.inUse -= b.size;
    this.stats.free += b.size;
    let list = this.freeLists.get(b.size);
    if (!list) this.freeLists.set(b.size, (list = []));
    list.push(b);
  }

  /** A buffer of exactly `bytes` (rounded up to 4), outside the pool: for weights. */
  allocate(bytes: number, label: string, usage = STORAGE_USAGE()): GpuBuffer {
    return this.create(Math.max(4, Math.ceil(bytes / 4) * 4), usage, label, false);
  }

  destroy(b: GpuBuffer): void {
    if (b.destroyed) return;
    this.beforeDestroy();
    b.destroyed = true;
    for (const fn of this.onDestroy) fn(b);
    b.buffer.destroy();
    this.stats.inUse -= b.size;
  }

  /** Destroys every free buffer (after a phase that needed many temporaries). */
  trim(): void {
    this.beforeDestroy();
    for (const list of this.freeLists.values()) {
      for (const b of list) {
        b.destroyed = true;
        for (const fn of this.onDestroy) fn(b);
        b.buffer.destroy();
        this.stats.free -= b.size;
      }
    }
    this.freeLists.clear();
  }

  private create(size: number, usage: number, label: string, pooled: boolean): GpuBuffer {
    if (size > this.maxBufferSize) throw new GpuOutOfMemoryError(size, this.maxBufferSize, `buffer '${label}'`);
    this.device.pushErrorScope("out-of-memory");
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer({ label, size, usage });
    } catch (e) {
      void this.device.popErrorScope();
      throw new GpuOutOfMemoryError(size, this.maxBufferSize, `buffer '${label}' (${(e as Error).message})`);
    }
    this.track(
      this.device.popErrorScope().then((e) => (e ? new GpuOutOfMemoryError(size, undefined, `buffer '${label}'`) : null)),
    );
    this.stats.allocations++;
    this.stats.inUse += size;
    this.stats.peak = Math.max(this.stats.peak, this.stats.inUse + this.stats.free);
    return new GpuBuffer(buffer, size, pooled, label);
  }
}
