// LayerNorm (GPT-2) and RMSNorm (Llama, Qwen2) forward and backward: thin wrappers that dispatch
// kernels/layernorm_{forward,backward}.wgsl and kernels/rmsnorm_{forward,backward}.wgsl.
// Rows of C channels: inp, out, dout, dinp are (N, C) with N = B*T; weights (C) and saved
// statistics (N) are f32. Gradient convention: dinp is written, or added to the existing contents
// with `accumulate: true` (the residual stream); dweight / dbias are always accumulated (+=), and
// optional (the norms are frozen in ABFT). A backward with parameter gradients borrows a scratch
// buffer from rt.pool and gives it back before returning. Dawn refuses one buffer in two writable
// bindings of a dispatch, so an absent optional output is bound to a runtime placeholder
// (rt.placeholder), which the kernels never touch.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { GpuRuntimeError } from "../gpu/errors.ts";
import { grid1d } from "./grid.ts";

const WG = 256; // threads per workgroup in every norm kernel

/** `k` distinct placeholder buffers for writable bindings a dispatch leaves untouched. */
function unused(rt: Runtime, k: number): GpuBuffer[] {
  return Array.from({ length: k }, (_, i) => rt.placeholder(i));
}

function need(kernel: string, name: string, b: GpuBuffer, floats: number): void {
  if (b.size < floats * 4) {
    throw new GpuRuntimeError(`${kernel}: buffer '${name}' (${b.label}) has ${b.size} bytes, needs ${floats * 4}`);
  }
}

function checkDims(kernel: string, N: number, C: number): void {
  if (!Number.isInteger(N) || N < 0 || !Number.isInteger(C) || C < 1) {
    throw new GpuRuntimeError(`${kernel}: bad dims N=${N} C=${C} (need N >= 0, C >= 1)`);
  }
}

/**
 * Splits the N rows for the parameter-gradient pass: about 1024 workgroups in all (enough to fill
 * an H100), at least 8 rows per chunk. Returns the chunk length and count (no chunk is empty).
 */
function paramChunks(N: number, C: number): { rowsPerChunk: number; nChunks: number } {
  const colBlocks = Math.ceil(C / WG);
  const want = Math.max(1, Math.min(Math.ceil(N / 8), Math.ceil(1024 / colBlocks)));
  const rowsPerChunk = Math.max(1, Math.ceil(N / want));
  return { rowsPerChunk, nChunks: Math.max(1, Math.ceil(N / rowsPerChunk)) };
}

/**
 * out (N, C) = LayerNorm(inp (N, C)) with weight, bias (C); biased variance, eps (GPT-2: 1e-5).
 * mean and rstd (N) are saved for the backward when given (both or neither).
 */
export function layernormForward(
  rt: Runtime,
  b: { out: GpuBuffer; inp: GpuBuffer; weight: GpuBuffer; bias: GpuBuffer; mean?: GpuBuffer; rstd?: GpuBuffer },
  d: { N: number; C: number; eps: number },
): void {
  const k = "layernorm_forward";
  checkDims(k, d.N, d.C);
  if (!b.mean !== !b.rstd) throw new GpuRuntimeError(`${k}: give both mean and rstd, or neither`);
  need(k, "inp", b.inp, d.N * d.C);
  need(k, "out", b.out, d.N * d.C);
  need(k, "weight", b.weight, d.C);
  need(k, "bias", b.bias, d.C);
  const save = b.mean !== undefined;
  if (save) {
    need(k, "mean", b.mean!, d.N);
    need(k, "rstd", b.rstd!, d.N);
  }
  // save = 0: the kernel never touches mean / rstd
  const [u0, u1] = save ? [b.mean!, b.rstd!] : unused(rt, 2);
  rt.dispatch(k, {
    params: { N: d.N, C: d.C, eps: d.eps, save: save ? 1 : 0 },
    bind: { inp: b.inp, weight: b.weight, bias: b.bias, out: b.out, mean: u0, rstd: u1 },
    workgroups: grid1d(d.N, 1),
  });
}

/**
 * LayerNorm backward from mean, rstd saved by layernormForward: dinp (N, C) written, or added to
 * with accumulate; dweight and dbias (C) accumulated when given (both or neither).
 */
export function layernormBackward(
  rt: Runtime,
  b: {
    dinp: GpuBuffer;
    dout: GpuBuffer;
    inp: GpuBuffer;
    weight: GpuBuffer;
    mean: GpuBuffer;
    rstd: GpuBuffer;
    dweight?: GpuBuffer;
    dbias?: GpuBuffer;
  },
  d: { N: number; C: number; accumulate?: boolean },
): void {
  const k = "layernorm_backward";
  const { N, C } = d;
  checkDims(k, N, C);
  if (!b.dweight !== !b.dbias) throw new GpuRuntimeError(`${k}: give both dweight and dbias, or neither`);
  for (const [name, buf] of [["dinp", b.dinp], ["dout", b.dout], ["inp", b.inp]] as const) need(k, name, buf, N * C);
  need(k, "weight", b.weight, C);
  need(k, "mean", b.mean, N);
  need(k, "rstd", b.rstd, N);
  const { rowsPerChunk, nChunks } = paramChunks(N, C);
  const params = { N, C, accumulate: d.accumulate ? 1 : 0, rowsPerChunk, nChunks };
  const reads = { dout: b.dout, inp: b.inp, weight: b.weight, mean: b.mean, rstd: b.rstd };
  if (!b.dweight || !b.dbias) {
    // main touches none of dweight, dbias, scratch
    const [u0, u1, u2] = unused(rt, 3);
    const bind = { ...reads, dinp: b.dinp, dweight: u0, dbias: u1, scratch: u2 };
    rt.dispatch(k, { params, bind, workgroups: grid1d(N, 1) });
    return;
  }
  need(k, "dweight", b.dweight, C);
  need(k, "dbias", b.dbias, C);
  const scratch = rt.pool.acquire(nChunks * 2 * C * 4, "layernorm_backward scratch");
  const bind = { ...reads, dinp: b.dinp, dweight: b.dweight, dbias: b.dbias, scratch };
  rt.dispatch(k, { params, bind, workgroups: grid1d(N, 1) });
  rt.dispatch(`${k}:dparams_partial`, { params, bind, workgroups: [Math.ceil(C / WG), nChunks] });
  rt.dispatch(`${k}:dparams_reduce`, { params, bind, workgroups: [Math.ceil(C / WG)] });
  rt.pool.release(scratch); // later dispatches that reuse it are ordered after these
}

/** out (N, C) = weight * inp * rstd, rstd = 1/sqrt(mean(inp^2) + eps) (HF LlamaRMSNorm); rstd (N) saved when given. */
export function rmsnormForward(
  rt: Runtime,
  b: { out: GpuBuffer; inp: GpuBuffer; weight: GpuBuffer; rstd?: GpuBuffer },
  d: { N: number; C: number; eps: number },
): void {
  const k = "rmsnorm_forward";
  checkDims(k, d.N, d.C);
  need(k, "inp", b.inp, d.N * d.C);
  need(k, "out", b.out, d.N * d.C);
  need(k, "weight", b.weight, d.C);
  if (b.rstd) need(k, "rstd", b.rstd, d.N);
  rt.dispatch(k, {
    params: { N: d.N, C: d.C, eps: d.eps, save: b.rstd ? 1 : 0 },
    // save = 0: the kernel never touches rstd
    bind: { inp: b.inp, weight: b.weight, out: b.out, rstd: b.rstd ?? unused(rt, 1)[0] },
    workgroups: grid1d(d.N, 1),
  });
}

/**
 * RMSNorm backward from rstd saved by rmsnormForward: dinp (N, C) written, or added to with
 * accumulate; dweight (C) accumulated when given.
 */
export function rmsnormBackward(
  rt: Runtime,
  b: { dinp: GpuBuffer; dout: GpuBuffer; inp: GpuBuffer; weight: GpuBuffer; rstd: GpuBuffer; dweight?: GpuBuffer },
  d: { N: number; C: number; accumulate?: boolean },
): void {
  const k = "rmsnorm_backward";
  const { N, C } = d;
  checkDims(k, N, C);
  for (const [name, buf] of [["dinp", b.dinp], ["dout", b.dout], ["inp", b.inp]] as const) need(k, name, buf, N * C);
  need(k, "weight", b.weight, C);
  need(k, "rstd", b.rstd, N);
  const { rowsPerChunk, nChunks } = paramChunks(N, C);
  const params = { N, C, accumulate: d.accumulate ? 1 : 0, rowsPerChunk, nChunks };
  const reads = { dout: b.dout, inp: b.inp, weight: b.weight, rstd: b.rstd };
  if (!b.dweight) {
    // main touches neither dweight nor scratch
    const [u0, u1] = unused(rt, 2);
    rt.dispatch(k, { params, bind: { ...reads, dinp: b.dinp, dweight: u0, scratch: u1 }, workgroups: grid1d(N, 1) });
    return;
  }
  need(k, "dweight", b.dweight, C);
  const scratch = rt.pool.acquire(nChunks * C * 4, "rmsnorm_backward scratch");
  const bind = { ...reads, dinp: b.dinp, dweight: b.dweight, scratch };
  rt.dispatch(k, { params, bind, workgroups: grid1d(N, 1) });
  rt.dispatch(`${k}:dparams_partial`, { params, bind, workgroups: [Math.ceil(C / WG), nChunks] });
  rt.dispatch(`${k}:dparams_reduce`, { params, bind, workgroups: [Math.ceil(C / WG)] });
  rt.pool.release(scratch);
}
