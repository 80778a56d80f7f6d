// The LM head on chosen rows and columns (kernels/lm_head_forward.wgsl, lm_head_backward.wgsl):
//   lmHeadForward   logits [R, J] = h[rows] · weight[cols]ᵀ       (cols absent: all V columns, J = V)
//   lmHeadBackward  dh[rows] += dlogits · weight[cols]            (the weight is frozen: no dW)
// h, dh f32 [M, C]; rows u32 [R] (distinct, for the backward); cols u32 [J]; weight [V, C] in f32,
// bf16 or f16 (16-bit: two per u32 word, element 2j in the low half, as safetensors stores them).
// Nothing is allocated per call: the backward may split J over `splits` partial products written
// to a caller's scratch buffer (lmHeadBackwardScratchBytes), and otherwise binds a placeholder.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";
import { tableSlices, type TableSlice } from "./table_slices.ts";
import { DTYPE_CODE, type WeightDtype } from "./matmul.ts";

const BR = 32; // tile rows
const BC = 128; // tile columns (forward: vocabulary columns; backward: channels)
const MAX_GRID = 65535;

export interface LmHeadDims {
  /** number of chosen rows */
  R: number;
  /** number of chosen columns; ignored (= V) when cols is absent */
  J?: number;
  /** channels */
  C: number;
  /** rows of h / dh */
  M: number;
  /** vocabulary size (rows of the weight) */
  V: number;
  /** storage of the weight (default f32) */
  dtype?: WeightDtype;
}

/** The weight's vocabulary slices (one, the whole weight, when it fits in a binding). */
function weightSlices(rt: Runtime, weight: GpuBuffer, d: LmHeadDims): TableSlice[] {
  return tableSlices(rt, weight, d.V, d.C, d.dtype ?? "f32", "LM head weight");
}

function columns(what: string, d: LmHeadDims, cols: GpuBuffer | undefined): number {
  const J = cols ? d.J : d.V;
  if (J === undefined) throw new GpuRuntimeError(`${what}: with cols, give J (their number)`);
  for (const [k, v] of Object.entries({ R: d.R, J, C: d.C, M: d.M, V: d.V })) {
    if (!Number.isInteger(v) || v < 1) throw new GpuRuntimeError(`${what}: ${k} = ${v} must be a positive integer`);
  }
  if (Math.ceil(d.R / BR) > MAX_GRID || Math.ceil(J / BC) > MAX_GRID) {
    throw new GpuRuntimeError(`${what}: R = ${d.R}, J = ${J} need more than ${MAX_GRID} workgroups in one grid dimension`);
  }
  return J;
}

export interface LmHeadForwardArgs {
  /** f32 [R, J] */
  logits: GpuBuffer;
  /** f32 [M, C] */
  h: GpuBuffer;
  /** [V, C] in dims.dtype */
  weight: GpuBuffer;
  /** u32 [R] row indices into h */
  rows: GpuBuffer;
  /** u32 [J] vocabulary ids; absent: all V columns */
  cols?: GpuBuffer;
}

/**
 * logits[r, j] = h[rows[r]] · weight[cols[j]]. A weight over the binding limit goes a vocabulary
 * slice per dispatch: all columns: each slice writes its own columns; chosen columns: the first
 * slice writes, the others add (exact zeros for ids outside them).
 */
export function lmHeadForward(rt: Runtime, a: LmHeadForwardArgs, d: LmHeadDims): void {
  const J = columns("lmHeadForward", d, a.cols);
  weightSlices(rt, a.weight, d).forEach((s, i) => {
    const Js = a.cols ? J : s.rows;
    rt.dispatch("lm_head_forward", {
      params: {
        R: d.R, J: Js, C: d.C, M: d.M, V: s.rows, allCols: a.cols ? 0 : 1, dtype: DTYPE_CODE[d.dtype ?? "f32"],
        v0: s.row0, ldl: J, accumulate: a.cols && i > 0 ? 1 : 0,
      },
      bind: { h: a.h, weight: s.binding, rows: a.rows, cols: a.cols ?? a.rows, logits: a.logits },
      workgroups: [Math.ceil(Js / BC), Math.ceil(d.R / BR)],
    });
  });
}

export interface LmHeadBackwardArgs {
  /** f32 [M, C]: the rows `rows` are accumulated into */
  dh: GpuBuffer;
  /** f32 [R, J] */
  dlogits: GpuBuffer;
  /** [V, C] in dims.dtype */
  weight: GpuBuffer;
  /** u32 [R], distinct */
  rows: GpuBuffer;
  /** u32 [J]; absent: all V columns */
  cols?: GpuBuffer;
  /** f32, at least lmHeadBackwardScratchBytes bytes: needed when splits > 1 */
  scratch?: GpuBuffer;
}

export type LmHeadBackwardDims = LmHeadDims & {
  /** split the J columns over this many partial products (default 1: no scratch needed) */
  splits?: number;
};

function splitChunk(J: number, splits: number): number {
  return Math.ceil(J / splits / 16) * 16;
}

/** A split count giving ~2 waves of workgroups on a 132-SM GPU, at least 512 columns per split. */
export function lmHeadBackwardSplits(d: { R: number; J: number; C: number }): number {
  const tiles = Math.ceil(d.R / BR) * Math.ceil(d.C / BC);
  return Math.max(1, Math.min(Math.ceil(264 / tiles), Math.floor(d.J / 512), MAX_GRID));
}

/** Bytes of the scratch buffer lmHeadBackward needs for `splits` (0 when splits = 1). */
export function lmHeadBackwardScratchBytes(d: { R: number; C: number; splits?: number }): number {
  const splits = d.splits ?? 1;
  return splits > 1 ? splits * d.R * d.C * 4 : 0;
}

/** dh[rows[r]] += Σ_j dlogits[r, j] · weight[cols[j]] */
export function lmHeadBackward(rt: Runtime, a: LmHeadBackwardArgs, d: LmHeadBackwardDims): void {
  const J = columns("lmHeadBackward", d, a.cols);
  const splits = d.splits ?? 1;
  if (!Number.isInteger(splits) || splits < 1 || splits > MAX_GRID) {
    throw new GpuRuntimeError(`lmHeadBackward: splits = ${splits} must be an integer in 1..${MAX_GRID}`);
  }
  const need = lmHeadBackwardScratchBytes({ R: d.R, C: d.C, splits });
  if (need > 0 && (!a.scratch || a.scratch.size < need)) {
    throw new GpuRuntimeError(`lmHeadBackward: splits = ${splits} needs a scratch buffer of ${need} bytes (got ${a.scratch?.size ?? "none"})`);
  }
  // each vocabulary slice (one when the weight fits a binding) adds its part into dh
  for (const s of weightSlices(rt, a.weight, d)) {
    const Js = a.cols ? J : s.rows;
    const params = {
      R: d.R, J: Js, C: d.C, M: d.M, V: s.rows, allCols: a.cols ? 0 : 1, splits, chunk: splitChunk(Js, splits), dtype: DTYPE_CODE[d.dtype ?? "f32"],
      v0: s.row0, ldl: J,
    };
    const bind = {
      dlogits: a.dlogits,
      weight: s.binding,
      rows: a.rows,
      cols: a.cols ?? a.rows,
      dh: a.dh,
      scratch: need > 0 ? a.scratch! : rt.placeholder(0),
    };
    rt.dispatch("lm_head_backward:main", {
      params,
      bind,
      workgroups: [Math.ceil(d.C / BC), Math.ceil(d.R / BR), splits],
    });
    if (splits > 1) {
      rt.dispatch("lm_head_backward:reduce", { params, bind, workgroups: grid1d(d.R * d.C, 256) });
    }
  }
}
