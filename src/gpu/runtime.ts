// The GPU runtime: dispatch kernels by name, upload, read back, time.
//
// Work is recorded into one open command encoder and one open compute pass; it is submitted when
// a result is read back (or flush() is called). WebGPU orders the dispatches of a pass, so one
// pass can hold a whole forward or backward. Per submit we make one command buffer and write
// the parameter arena once. Bind groups are cached per (kernel, buffers) and dropped with their
// buffers; nothing is created per dispatch, which is what keeps bun-webgpu from leaking.
import { BufferPool, GpuBuffer } from "./buffers.ts";
import { getGpu, type Gpu } from "./device.ts";
import { GpuRuntimeError, KernelCompileError } from "./errors.ts";
import { PipelineCache, type CompiledKernel } from "./kernels.ts";

const PARAM_SLOT = 256; // >= minUniformBufferOffsetAlignment on every adapter seen
const PARAM_SLOTS = 4096; // dispatches per submit before an automatic flush
// Cached bind groups, least recently used evicted first. Pooled buffers come back in new
// combinations step after step, so an unbounded cache grows without end (seen: 130 new groups
// per training step, resident memory rising with them); a bound keeps memory flat.
const MAX_BIND_GROUPS = 8192;

/**
 * Part of a buffer bound on its own: bytes [offset, offset + size). The offset must be a multiple
 * of the adapter's minStorageBufferOffsetAlignment. This is how a tensor larger than one storage
 * binding (a 128k-token vocabulary table) is read a slice at a time.
 */
export interface BufferSlice {
  of: GpuBuffer;
  offset: number;
  size: number;
}

export type Binding = GpuBuffer | BufferSlice;

export interface DispatchArgs {
  /** values of the kernel's Params struct, by field name */
  params?: Record<string, number>;
  /** storage buffers (or slices of them) by their WGSL variable name */
  bind: Record<string, Binding>;
  /** workgroup counts */
  workgroups: [number, number?, number?];
  /** WGSL override constants (a pipeline is compiled per distinct set) */
  constants?: Record<string, number>;
}

export class Runtime {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  private readonly device: GPUDevice;
  private readonly paramArena: GPUBuffer;
  private readonly paramData = new ArrayBuffer(PARAM_SLOT * PARAM_SLOTS);
  private readonly paramU32 = new Uint32Array(this.paramData);
  private readonly paramI32 = new Int32Array(this.paramData);
  private readonly paramF32 = new Float32Array(this.paramData);
  private slotsUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly groupsOfBuffer = new Map<number, Set<string>>();
  private pendingChecks: Promise<Error | null>[] = [];
  private batchKernels = new Set<string>();
  private readonly stagingFree = new Map<number, GPUBuffer[]>();
  private timing: { querySet: GPUQuerySet; resolve: GPUBuffer } | null = null;
  private readonly placeholders: GpuBuffer[] = [];
  private timedPassOpen = false;
  /** number of submits so far (tests and benchmarks read it) */
  submits = 0;
  /**
   * Tables (embeddings, LM heads) larger than this many bytes are bound a slice of rows at a time
   * (src/ops/table_slices.ts). The adapter's storage binding limit; tests lower it.
   */
  sliceLimit: number;

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.sliceLimit = gpu.limits.maxStorageBufferBindingSize;
    this.pipelines = new PipelineCache(this.device);
    this.pool = new BufferPool(this.device, gpu.limits.maxBufferSize, (c) => this.pendingChecks.push(c));
    this.pool.addDestroyListener((b) => this.forgetBindGroups(b));
    // WebGPU refuses to submit work that uses a destroyed buffer; once submitted, destroy() waits for it
    this.pool.beforeDestroy = () => this.flush();
    this.paramArena = this.device.createBuffer({
      label: "param-arena",
      size: PARAM_SLOT * PARAM_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  get hasTimestamps(): boolean {
    return this.gpu.features.includes("timestamp-query");
  }

  // ---- buffers -------------------------------------------------------------------------

  /** A pooled buffer holding `data` (f32, u32 or i32 typed array). */
  upload(data: ArrayBufferView, label = "upload"): GpuBuffer {
    const b = this.pool.acquire(data.byteLength, label);
    this.write(b, data);
    return b;
  }

  /** Writes `data` at the start of `b`, after all work recorded so far has been submitted. */
  write(b: GpuBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.flush(); // queue.writeBuffer runs before unsubmitted commands: submit them first
    const bytes = data.byteLength - (data.byteLength % 4);
    this.device.queue.writeBuffer(b.buffer, byteOffset, data.buffer, data.byteOffset, bytes);
  }

  /**
   * A small buffer to bind where a kernel's optional output (or input) is unused: the kernel never
   * touches it. Distinct slots give distinct buffers, because Dawn refuses one buffer in two
   * writable bindings of a dispatch. Made once per slot and kept for the runtime's life.
   */
  placeholder(slot = 0): GpuBuffer {
    let b = this.placeholders[slot];
    if (!b || b.destroyed) this.placeholders[slot] = b = this.pool.allocate(256, `unused-binding-${slot}`);
    return b;
  }

  /** Sets `bytes` bytes of `b` (default: all) to zero, in order with the recorded dispatches. */
  clear(b: GpuBuffer, bytes = b.size): void {
    this.ensureEncoder();
    this.endPass();
    this.encoder!.clearBuffer(b.buffer, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Reads `bytes` bytes from `b` (default: all) after all recorded work has run. */
  async read(b: GpuBuffer, bytes = b.size, byteOffset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.takeStaging(size);
    this.ensureEncoder();
    this.endPass();
    this.encoder!.copyBufferToBuffer(b.buffer, byteOffset, staging, 0, size);
    this.flush();
    await this.checkErrors();
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.giveStaging(size, staging);
    return out;
  }

  async readF32(b: GpuBuffer, count: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(b, count * 4, offset * 4));
  }

  // ---- dispatch ------------------------------------------------------------------------

  dispatch(kernel: string, args: DispatchArgs): void {
    const k = this.pipelines.get(kernel, args.constants);
    if (!this.batchKernels.has(k.id)) {
      this.batchKernels.add(k.id);
      this.pendingChecks.push(k.checked);
    }
    const offset = this.writeParams(k, args.params ?? {});
    const group = this.bindGroup(k, args.bind);
    this.ensurePass();
    this.pass!.setPipeline(k.pipeline);
    if (k.hasParams) this.pass!.setBindGroup(0, group, [offset]);
    else this.pass!.setBindGroup(0, group);
    const [x, y = 1, z = 1] = args.workgroups;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max || x < 1 || y < 1 || z < 1) {
      throw new GpuRuntimeError(`${kernel}: workgroup grid ${x}x${y}x${z} is outside 1..${max} per dimension`);
    }
    this.pass!.dispatchWorkgroups(x, y, z);
    if (k.hasParams && this.slotsUsed >= PARAM_SLOTS) this.flush();
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.slotsUsed > 0) {
      this.device.queue.writeBuffer(this.paramArena, 0, this.paramData, 0, this.slotsUsed * PARAM_SLOT);
    }
    const commands = this.encoder.finish();
    this.device.queue.submit([commands]);
    commands._destroy(); // bun-webgpu never releases command buffers by itself
    this.encoder = null;
    this.slotsUsed = 0;
    this.submits++;
    // The validation scope opened with the encoder turns Dawn's errors into exceptions that name
    // the kernels of this submit.
    const kernels = [...this.batchKernels].join(", ") || "copies only";
    this.batchKernels = new Set();
    this.pendingChecks.push(
      this.device
        .popErrorScope()
        .then((e) => (e ? new GpuRuntimeError(`GPU error in a submit running ${kernels}: ${e.message.trim()}`) : null)),
    );
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.checkErrors();
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Throws the first compile, validation or out-of-memory error reported so far. */
  async checkErrors(): Promise<void> {
    if (this.pendingChecks.length === 0) return;
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    for (const e of await Promise.all(checks)) if (e) throw e;
  }

  /**
   * GPU time in milliseconds of the dispatches `record` makes, from timestamp queries written at
   * the start and end of one compute pass. Undefined without the timestamp-query feature.
   * Dawn quantizes timestamps: time many iterations inside one call.
   */
  async timeGpu(record: () => void): Promise<number | undefined> {
    if (!this.hasTimestamps) {
      record();
      await this.sync();
      return undefined;
    }
    this.flush();
    this.timing ??= {
      querySet: this.device.createQuerySet({ type: "timestamp", count: 2 }),
      resolve: this.device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
    };
    this.timedPassOpen = true;
    record();
    this.timedPassOpen = false;
    this.ensureEncoder();
    this.endPass();
    const staging = this.takeStaging(16);
    this.encoder!.resolveQuerySet(this.timing.querySet, 0, 2, this.timing.resolve, 0);
    this.encoder!.copyBufferToBuffer(this.timing.resolve, 0, staging, 0, 16);
    this.flush();
    await this.checkErrors();
    await staging.mapAsync(GPUMapMode.READ, 0, 16);
    const ns = new BigUint64Array(staging.getMappedRange(0, 16).slice(0));
    staging.unmap();
    this.giveStaging(16, staging);
    return Number(ns[1] - ns[0]) / 1e6;
  }

  // ---- internals -----------------------------------------------------------------------

  private ensureEncoder(): void {
    if (this.encoder) return;
    this.device.pushErrorScope("validation"); // popped in flush()
    this.encoder = this.device.createCommandEncoder();
  }

  private ensurePass(): void {
    this.ensureEncoder();
    if (this.pass) return;
    if (this.timedPassOpen && this.timing) {
      this.pass = this.encoder!.beginComputePass({
        timestampWrites: { querySet: this.timing.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
      });
    } else {
      this.pass = this.encoder!.beginComputePass();
    }
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      // bun-webgpu has no release() on pass encoders; without this each pass leaks its encoder.
      const pass = this.pass as unknown as { lib?: { wgpuComputePassEncoderRelease?: (p: unknown) => void } };
      pass.lib?.wgpuComputePassEncoderRelease?.(this.pass.ptr);
      this.pass = null;
    }
  }

  private writeParams(k: CompiledKernel, params: Record<string, number>): number {
    if (!k.hasParams) {
      const extra = Object.keys(params);
      if (extra.length) throw new GpuRuntimeError(`${k.id}: has no Params, got ${extra.join(", ")}`);
      return 0;
    }
    const base = (this.slotsUsed * PARAM_SLOT) / 4;
    const fields = k.info.params;
    for (let i = 0; i < fields.length; i++) {
      const { name, type } = fields[i];
      const v = params[name];
      if (v === undefined || !Number.isFinite(v)) {
        throw new GpuRuntimeError(`${k.id}: parameter '${name}' is ${v} (Params: ${fields.map((f) => f.name).join(", ")})`);
      }
      if (type === "f32") this.paramF32[base + i] = v;
      else if (type === "u32") this.paramU32[base + i] = v;
      else this.paramI32[base + i] = v;
    }
    for (const name in params) {
      if (!fields.some((f) => f.name === name)) throw new GpuRuntimeError(`${k.id}: unknown parameter '${name}'`);
    }
    return this.slotsUsed++ * PARAM_SLOT;
  }

  private bindGroup(k: CompiledKernel, bind: Record<string, Binding>): GPUBindGroup {
    const names = [...k.info.storage.keys()];
    for (const name in bind) {
      if (!k.info.storage.has(name)) throw new GpuRuntimeError(`${k.id}: no storage binding '${name}' (has: ${names.join(", ")})`);
    }
    const slices = names.map((n): BufferSlice => {
      const b = bind[n];
      if (!b) throw new GpuRuntimeError(`${k.id}: storage binding '${n}' not given`);
      const slice = b instanceof GpuBuffer ? { of: b, offset: 0, size: b.size } : b;
      if (slice.of.destroyed) throw new GpuRuntimeError(`${k.id}: buffer '${slice.of.label}' bound to '${n}' was destroyed`);
      return slice;
    });
    const key = `${k.id}#${slices.map((b) => (b.offset === 0 && b.size === b.of.size ? `${b.of.id}` : `${b.of.id}@${b.offset}+${b.size}`)).join(",")}`;
    let group = this.bindGroups.get(key);
    if (group) {
      this.bindGroups.delete(key); // move to the most recently used end
      this.bindGroups.set(key, group);
      return group;
    }
    const maxBinding = this.gpu.limits.maxStorageBufferBindingSize;
    const align = this.gpu.limits.minStorageBufferOffsetAlignment;
    const entries: GPUBindGroupEntry[] = [];
    if (k.hasParams) entries.push({ binding: 0, resource: { buffer: this.paramArena, offset: 0, size: PARAM_SLOT } });
    names.forEach((n, i) => {
      const { of: b, offset, size } = slices[i];
      if (size > maxBinding) {
        throw new GpuRuntimeError(
          `${k.id}: buffer '${b.label}' (${size} bytes bound) is larger than this adapter's storage binding limit (${maxBinding} bytes)`,
        );
      }
      if (offset % align !== 0 || offset + size > b.size || size <= 0 || size % 4 !== 0) {
        throw new GpuRuntimeError(`${k.id}: slice [${offset}, ${offset + size}) of buffer '${b.label}' (${b.size} bytes) is not a valid binding (offsets are multiples of ${align}, sizes of 4)`);
      }
      entries.push({ binding: k.info.storage.get(n)!.binding, resource: { buffer: b.buffer, offset, size } });
    });
    group = this.device.createBindGroup({ label: key, layout: k.layout, entries });
    this.bindGroups.set(key, group);
    for (const { of: b } of slices) {
      const set = this.groupsOfBuffer.get(b.id);
      if (set) set.add(key);
      else this.groupsOfBuffer.set(b.id, new Set([key]));
    }
    if (this.bindGroups.size > MAX_BIND_GROUPS) this.evictBindGroup(this.bindGroups.keys().next().value!);
    return group;
  }

  private evictBindGroup(key: string): void {
    const g = this.bindGroups.get(key);
    if (!g) return;
    g.destroy?.(); // Dawn keeps it alive for submitted work that still uses it
    this.bindGroups.delete(key);
    for (const id of key.slice(key.indexOf("#") + 1).split(",")) this.groupsOfBuffer.get(parseInt(id, 10))?.delete(key);
  }

  private forgetBindGroups(b: GpuBuffer): void {
    for (const key of [...(this.groupsOfBuffer.get(b.id) ?? [])]) this.evictBindGroup(key);
    this.groupsOfBuffer.delete(b.id);
  }

  /** the bound of the bind-group cache */
  readonly maxBindGroups = MAX_BIND_GROUPS;

  /** number of cached bind groups (tests check that it stays bounded) */
  get bindGroupCount(): number {
    return this.bindGroups.size;
  }

  private takeStaging(size: number): GPUBuffer {
    return (
      this.stagingFree.get(size)?.pop() ??
      this.device.createBuffer({ label: "staging", size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    );
  }

  private giveStaging(size: number, b: GPUBuffer): void {
    let list = this.stagingFree.get(size);
    if (!list) this.stagingFree.set(size, (list = []));
    if (list.length < 4) list.push(b);
    else b.destroy();
  }
}

let runtime: Promise<Runtime> | undefined;

/** The process-wide runtime on the process-wide GPU. */
export function getRuntime(): Promise<Runtime> {
  runtime ??= getGpu().then((gpu) => new Runtime(gpu));
  return runtime;
}

export { GpuBuffer, KernelCompileError };
