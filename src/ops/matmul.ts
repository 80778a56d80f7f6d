// Linear-layer products, nn.Linear layout (weight [N, K] = [out_features, in_features]):
//   matmulForward        out [batch, M, N] = inp [batch, M, K] · weightᵀ (+ bias)   kernels/matmul_forward.wgsl
//   matmulBackwardInput  dinp = dout · weight (written, or added with accumulate)  kernels/matmul_backward_input.wgsl
//   matmulBackwardWeight dweight += doutᵀ · inp, dbias += Σ_m dout               kernels/matmul_backward_weight.wgsl
// Weights are f32, bf16 or f16 (16-bit: two per u32 word, element 2j in the low half, as safetensors
// stores them); activations and gradients are f32; the weight gradient exists for f32 weights only.
// Batched: batch b uses inp + b·M·K, out + b·M·N and weight + b·N·K, bias + b·N, or one weight and
// bias for all batches with sharedW.
// Nothing is allocated per call. The weight gradient may split its M rows over `splits` workgroups
// per tile (the caller passes a scratch buffer, sized by matmulWeightGradScratchBytes), and binds a
// runtime placeholder (rt.placeholder) for writable bindings it does not use.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export type WeightDtype = "f32" | "bf16" | "f16";

/** Params.dtype of the kernels */
export const DTYPE_CODE: Record<WeightDtype, number> = { f32: 0, bf16: 1, f16: 2 };

/** Output tile of the matmul kernels (rows x cols per workgroup). */
export const MATMUL_TILE = 128;
const MAX_GRID = 65535;

export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  /** number of independent products (default 1) */
  batch?: number;
  /** one weight (and bias) for every batch */
  sharedW?: boolean;
  /** storage of the weight (default f32) */
  dtype?: WeightDtype;
}

/** Bytes of a weight [N, K] (per batch) stored as `dtype`. */
export function weightBytes(N: number, K: number, dtype: WeightDtype = "f32", batches = 1): number {
  const n = N * K * batches;
  return dtype === "f32" ? n * 4 : Math.ceil(n / 2) * 4;
}

function checkDims(what: string, d: MatmulDims): number {
  const batch = d.batch ?? 1;
  for (const [k, v] of Object.entries({ M: d.M, N: d.N, K: d.K, batch })) {
    if (!Number.isInteger(v) || v < 1) throw new GpuRuntimeError(`${what}: ${k} = ${v} must be a positive integer`);
  }
  const tiles = Math.max(Math.ceil(d.M / MATMUL_TILE), Math.ceil(d.N / MATMUL_TILE), Math.ceil(d.K / MATMUL_TILE));
  if (tiles > MAX_GRID || batch > MAX_GRID) {
    throw new GpuRuntimeError(`${what}: ${d.M}x${d.N}x${d.K} (batch ${batch}) needs more than ${MAX_GRID} workgroups in one grid dimension`);
  }
  return batch;
}

export interface MatmulForwardArgs {
  /** f32 [batch, M, N] */
  out: GpuBuffer;
  /** f32 [batch, M, K] */
  inp: GpuBuffer;
  /** [N, K] (or [batch, N, K]) in dims.dtype */
  weight: GpuBuffer;
  /** f32 [N] (or [batch, N]), optional */
  bias?: GpuBuffer;
}

/** out = inp · weightᵀ (+ bias) */
export function matmulForward(rt: Runtime, a: MatmulForwardArgs, d: MatmulDims): void {
  const batch = checkDims("matmulForward", d);
  rt.dispatch("matmul_forward", {
    params: { M: d.M, N: d.N, K: d.K, sharedW: d.sharedW ? 1 : 0, hasBias: a.bias ? 1 : 0, dtype: DTYPE_CODE[d.dtype ?? "f32"] },
    // without bias the (unread) bias binding gets the weight again: both are read-only
    bind: { inp: a.inp, weight: a.weight, bias: a.bias ?? a.weight, out: a.out },
    workgroups: [Math.ceil(d.N / MATMUL_TILE), Math.ceil(d.M / MATMUL_TILE), batch],
  });
}

export interface MatmulBackwardInputArgs {
  /** f32 [batch, M, K]: written, or added to with accumulate */
  dinp: GpuBuffer;
  /** f32 [batch, M, N] */
  dout: GpuBuffer;
  /** [N, K] (or [batch, N, K]) in dims.dtype */
  weight: GpuBuffer;
}

/** dinp = dout · weight; with accumulate: dinp += dout · weight */
export function matmulBackwardInput(
  rt: Runtime,
  a: MatmulBackwardInputArgs,
  d: MatmulDims & { accumulate?: boolean },
): void {
  const batch = checkDims("matmulBackwardInput", d);
  rt.dispatch("matmul_backward_input", {
    params: {
      M: d.M, N: d.N, K: d.K, sharedW: d.sharedW ? 1 : 0, accumulate: d.accumulate ? 1 : 0, dtype: DTYPE_CODE[d.dtype ?? "f32"],
    },
    bind: { dout: a.dout, weight: a.weight, dinp: a.dinp },
    workgroups: [Math.ceil(d.K / MATMUL_TILE), Math.ceil(d.M / MATMUL_TILE), batch],
  });
}

export interface MatmulBackwardWeightArgs {
  /** f32 [N, K] (or [batch, N, K]): accumulated */
  dweight: GpuBuffer;
  /** f32 [batch, M, N] */
  dout: GpuBuffer;
  /** f32 [batch, M, K] */
  inp: GpuBuffer;
  /** f32 [N] (or [batch, N]): accumulated, optional */
  dbias?: GpuBuffer;
  /** f32, at least matmulWeightGradScratchBytes(dims) bytes: needed when dims.splits > 1 */
  scratch?: GpuBuffer;
}

export type MatmulWeightGradDims = Omit<MatmulDims, "dtype"> & {
  /** split the M rows over this many partial products (default 1: no scratch needed) */
  splits?: number;
};

/** M, batch as the kernel sees them: a shared weight folds the batches into the rows. */
function weightGradShape(d: MatmulWeightGradDims): { M: number; batch: number } {
  const batch = d.batch ?? 1;
  return d.sharedW ? { M: d.M * batch, batch: 1 } : { M: d.M, batch };
}

/** Rows per split, a multiple of the kernel's step of 8. */
function splitChunk(M: number, splits: number): number {
  return Math.ceil(M / splits / 8) * 8;
}

/**
 * A split count that gives at least ~2 waves of workgroups on a 132-SM GPU (H100) when the output
 * has few 128x128 tiles, keeping at least 256 rows per split.
 */
export function matmulWeightGradSplits(d: MatmulWeightGradDims): number {
  const { M, batch } = weightGradShape(d);
  const tiles = Math.ceil(d.N / MATMUL_TILE) * Math.ceil(d.K / MATMUL_TILE) * batch;
  const want = Math.ceil(264 / tiles);
  return Math.max(1, Math.min(want, Math.floor(M / 256), Math.floor(MAX_GRID / batch)));
}

/** Bytes of the scratch buffer matmulBackwardWeight needs for d.splits (0 when splits = 1). */
export function matmulWeightGradScratchBytes(d: MatmulWeightGradDims): number {
  const splits = d.splits ?? 1;
  if (splits <= 1) return 0;
  const { batch } = weightGradShape(d);
  return batch * splits * (d.N * d.K + d.N) * 4;
}

/** dweight += doutᵀ · inp; dbias += column sums of dout (f32 weights) */
export function matmulBackwardWeight(rt: Runtime, a: MatmulBackwardWeightArgs, d: MatmulWeightGradDims): void {
  checkDims("matmulBackwardWeight", d);
  const { M, batch } = weightGradShape(d);
  const splits = d.splits ?? 1;
  if (!Number.isInteger(splits) || splits < 1 || splits * batch > MAX_GRID) {
    throw new GpuRuntimeError(`matmulBackwardWeight: splits = ${splits} must be an integer in 1..${Math.floor(MAX_GRID / batch)}`);
  }
  const need = matmulWeightGradScratchBytes(d);
  if (need > 0 && (!a.scratch || a.scratch.size < need)) {
    throw new GpuRuntimeError(
      `matmulBackwardWeight: splits = ${splits} needs a scratch buffer of ${need} bytes (got ${a.scratch?.size ?? "none"})`,
    );
  }
  const params = {
    M, N: d.N, K: d.K, batch, hasBias: a.dbias ? 1 : 0, splits, chunk: splitChunk(M, splits),
  };
  const bind = { dout: a.dout, inp: a.inp, dweight: a.dweight, dbias: a.dbias ?? rt.placeholder(0),
    scratch: need > 0 ? a.scratch! : rt.placeholder(1),
  };
  rt.dispatch("matmul_backward_weight:main", {
    params,
    bind,
    workgroups: [Math.ceil(d.K / MATMUL_TILE), Math.ceil(d.N / MATMUL_TILE), batch * splits],
  });
  if (splits > 1) {
    rt.dispatch("matmul_backward_weight:reduce", {
      params,
      bind,
      workgroups: grid1d(batch * (d.N * d.K + d.N), 256),
    });
  }
}
