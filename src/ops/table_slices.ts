// Binding a row-major table [V, C] that may be larger than one storage binding (lavapipe allows
// 128 MiB; Llama-3's 128256 x 4096 embedding is 1 GiB in bf16, 2 GiB in f32) as consecutive slices
// of whole rows. Each slice starts at a byte offset that is a multiple of the adapter's
// minStorageBufferOffsetAlignment (so 16-bit tables always start at an even element, as the
// kernels' two-per-word packing needs) and fits in maxStorageBufferBindingSize. A table that fits
// is one slice: the whole buffer, bound as before.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { BufferSlice, GpuBuffer, Runtime } from "../gpu/runtime.ts";
import type { WeightDtype } from "./matmul.ts";

export interface TableSlice {
  /** first table row in this slice */
  row0: number;
  /** rows in this slice */
  rows: number;
  /** what to bind */
  binding: GpuBuffer | BufferSlice;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The slices of table `buf` ([V, C] in `dtype`) under the runtime's slice limit (rt.sliceLimit: the
 * adapter's binding limit unless a test lowers it).
 */
export function tableSlices(rt: Runtime, buf: GpuBuffer, V: number, C: number, dtype: WeightDtype, what = "table"): TableSlice[] {
  const maxBind = Math.min(rt.sliceLimit, rt.gpu.limits.maxStorageBufferBindingSize);
  const align = rt.gpu.limits.minStorageBufferOffsetAlignment;
  const rowBytes = C * (dtype === "f32" ? 4 : 2);
  const tableBytes = Math.ceil((V * rowBytes) / 4) * 4;
  if (tableBytes <= maxBind) return [{ row0: 0, rows: V, binding: buf }];
  const step = align / gcd(align, rowBytes); // rows per aligned offset
  const perSlice = Math.floor(maxBind / rowBytes / step) * step;
  if (perSlice < 1) {
    throw new GpuRuntimeError(`${what}: a slice of ${step} rows of ${rowBytes} bytes is larger than this adapter's storage binding limit (${maxBind} bytes)`);
  }
  const out: TableSlice[] = [];
  for (let row0 = 0; row0 < V; row0 += perSlice) {
    const rows = Math.min(perSlice, V - row0);
    const offset = row0 * rowBytes;
    out.push({ row0, rows, binding: { of: buf, offset, size: Math.min(Math.ceil((rows * rowBytes) / 4) * 4, buf.size - offset) } });
  }
  return out;
}
