// Transposes and widens stored weights on the GPU (kernels/transpose.wgsl), so that loading never
// loops over elements on the host:
//   transpose   out [ncols, rows] = src[:, col0 : col0 + ncols]ᵀ, src [rows, cols] in f32/bf16/f16,
//               out in f32 or in src's 16-bit dtype (bits copied)
//   widenToF32  out [n] f32 = src [n] in f32/bf16/f16 (exact)
// 16-bit values are packed two per u32 word, element 2j in the low half (as everywhere in kernels/).
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";
import { DTYPE_CODE, type WeightDtype } from "./matmul.ts";

/** Out rows (src columns) and out columns (src rows) per workgroup tile of kernels/transpose.wgsl. */
export const TRANSPOSE_TILE = { rows: 32, cols: 64 } as const;

/** Bytes of n values stored as dtype (16-bit: two per word; at least one word). */
export function storedBytes(n: number, dtype: WeightDtype): number {
  return Math.max(4, dtype === "f32" ? n * 4 : Math.ceil(n / 2) * 4);
}

export interface TransposeDims {
  /** src [rows, cols] */
  rows: number;
  cols: number;
  /** the column window [col0, col0 + ncols) (default: all columns) */
  col0?: number;
  ncols?: number;
  srcDtype: WeightDtype;
  /** f32, or srcDtype (16-bit only: a plain transpose of the bits) */
  outDtype: WeightDtype;
}

/** out [ncols, rows] = src[:, col0 : col0 + ncols]ᵀ (see the file header). */
export function transpose(rt: Runtime, a: { out: GpuBuffer; src: GpuBuffer }, d: TransposeDims): void {
  const col0 = d.col0 ?? 0;
  const ncols = d.ncols ?? d.cols - col0;
  for (const [k, v] of Object.entries({ rows: d.rows, cols: d.cols, ncols })) {
    if (!Number.isInteger(v) || v < 1) throw new GpuRuntimeError(`transpose: ${k} = ${v} must be a positive integer`);
  }
  if (!Number.isInteger(col0) || col0 < 0 || col0 + ncols > d.cols) {
    throw new GpuRuntimeError(`transpose: columns [${col0}, ${col0 + ncols}) are outside the ${d.cols} columns of src`);
  }
  if (d.outDtype !== "f32" && d.outDtype !== d.srcDtype) {
    throw new GpuRuntimeError(`transpose: ${d.srcDtype} → ${d.outDtype} is not supported (out is f32 or the src dtype)`);
  }
  checkSize("transpose", "src", a.src, storedBytes(d.rows * d.cols, d.srcDtype));
  checkSize("transpose", "out", a.out, storedBytes(ncols * d.rows, d.outDtype));
  rt.dispatch("transpose", {
    params: { rows: d.rows, cols: d.cols, col0, ncols, srcDtype: DTYPE_CODE[d.srcDtype], outF32: d.outDtype === "f32" ? 1 : 0 },
    bind: { src: a.src, out: a.out },
    workgroups: [Math.ceil(d.rows / TRANSPOSE_TILE.cols), Math.ceil(ncols / TRANSPOSE_TILE.rows)],
  });
}

/** out [n] f32 = src [n] in srcDtype, widened exactly. */
export function widenToF32(rt: Runtime, a: { out: GpuBuffer; src: GpuBuffer }, d: { n: number; srcDtype: WeightDtype }): void {
  if (!Number.isInteger(d.n) || d.n < 1) throw new GpuRuntimeError(`widenToF32: n = ${d.n} must be a positive integer`);
  checkSize("widenToF32", "src", a.src, storedBytes(d.n, d.srcDtype));
  checkSize("widenToF32", "out", a.out, d.n * 4);
  rt.dispatch("transpose:widen", {
    params: { rows: 1, cols: d.n, col0: 0, ncols: d.n, srcDtype: DTYPE_CODE[d.srcDtype], outF32: 1 },
    bind: { src: a.src, out: a.out },
    workgroups: grid1d(d.n, 256),
  });
}

function checkSize(op: string, what: string, b: GpuBuffer, need: number): void {
  if (b.size < need) throw new GpuRuntimeError(`${op}: ${what} has ${b.size} bytes, needs ${need}`);
}
