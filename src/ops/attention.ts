// Causal softmax attention with grouped-query heads over right-padded sequences, forward and
// backward (kernels/attention_forward.wgsl, attention_backward.wgsl, attention_backward_dkdv.wgsl),
// and the last-row gather (kernels/attention_last_row.wgsl).
// Layouts as the linear layers produce them: q [B,T,NH,HS], k, v [B,T,NKV,HS], y [B,T,NH,HS];
// lengths [B] u32 (sequence b holds tokens t < lengths[b], values above T count as T).
// Requirements: HS a multiple of 4 and at most 128, NH a multiple of NKV.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface AttentionDims {
  B: number;
  T: number;
  /** query heads */
  NH: number;
  /** key/value heads (query head h uses kv head h / (NH/NKV)) */
  NKV: number;
  HS: number;
  /** score scale, default 1/sqrt(HS) */
  scale?: number;
}

/**
 * Which probabilities the forward writes besides y:
 *   full: att [B,NH,T,T] (row t < lengths[b] over columns c <= t, zeros elsewhere), what backward needs;
 *   last: attLast [B,NH,T], only the row lengths[b]-1 of each (b, h) (zeros when lengths[b] = 0).
 */
export type AttentionProbs = { mode: "full"; att: GpuBuffer } | { mode: "last"; attLast: GpuBuffer };

const ROWS_PER_WORKGROUP = 32;
const MAX_HS = 128;
const MAX_GRID = 65535;

function check(d: AttentionDims): number {
  const { B, T, NH, NKV, HS } = d;
  for (const [name, x] of Object.entries({ B, T, NH, NKV, HS })) {
    if (!Number.isInteger(x) || x < 1) throw new GpuRuntimeError(`attention: ${name} = ${x} must be a positive integer`);
  }
  if (HS % 4 !== 0 || HS > MAX_HS) {
    throw new GpuRuntimeError(`attention: head size HS = ${HS} must be a multiple of 4 and at most ${MAX_HS}`);
  }
  if (NH % NKV !== 0) throw new GpuRuntimeError(`attention: NH = ${NH} is not a multiple of NKV = ${NKV}`);
  if (2 * B > MAX_GRID || NH > MAX_GRID) {
    throw new GpuRuntimeError(`attention: B = ${B} (at most ${MAX_GRID / 2}) or NH = ${NH} too large for the grid`);
  }
  return d.scale ?? 1 / Math.sqrt(HS);
}

/** y = causal softmax(scale q k^T) v; optionally the probabilities (see AttentionProbs). */
export function attentionForward(
  rt: Runtime,
  y: GpuBuffer, // [B,T,NH,HS] written (0 on padded rows)
  q: GpuBuffer, // [B,T,NH,HS]
  k: GpuBuffer, // [B,T,NKV,HS]
  v: GpuBuffer, // [B,T,NKV,HS]
  lengths: GpuBuffer, // [B] u32
  d: AttentionDims,
  probs?: AttentionProbs,
): void {
  const scale = check(d);
  let out: GpuBuffer;
  let mode: number;
  if (!probs) {
    mode = 0;
    out = rt.placeholder(0); // mode 0 never touches `probs`
  } else if (probs.mode === "full") {
    mode = 1;
    out = probs.att;
  } else {
    mode = 2;
    out = probs.attLast;
  }
  rt.dispatch("attention_forward", {
    params: { B: d.B, T: d.T, NH: d.NH, NKV: d.NKV, HS: d.HS, scale, mode },
    bind: { q, k, v, lengths, y, probs: out },
    workgroups: [Math.ceil(d.T / ROWS_PER_WORKGROUP), d.NH, d.B],
  });
}

/**
 * attLast [B,NH,T] = the row lengths[b]-1 of att [B,NH,T,T] for every (b, h) (zeros when
 * lengths[b] = 0): with att from the "full" forward this equals, bit for bit, what the "last"
 * forward writes, without a second attention pass.
 */
export function attentionLastRow(
  rt: Runtime,
  attLast: GpuBuffer, // [B,NH,T] written
  att: GpuBuffer, // [B,NH,T,T]
  lengths: GpuBuffer, // [B] u32
  d: Pick<AttentionDims, "B" | "T" | "NH">,
): void {
  const { B, T, NH } = d;
  for (const [name, x] of Object.entries({ B, T, NH })) {
    if (!Number.isInteger(x) || x < 1) throw new GpuRuntimeError(`attentionLastRow: ${name} = ${x} must be a positive integer`);
  }
  rt.dispatch("attention_last_row", { params: { B, T, NH }, bind: { att, lengths, attLast }, workgroups: grid1d(B * NH * T, 256) });
}

export interface AttentionGrads {
  /** [B,T,NH,HS], written */
  dq: GpuBuffer;
  /** [B,T,NKV,HS], written (summed over the query heads of each kv head) */
  dk: GpuBuffer;
  /** [B,T,NKV,HS], written */
  dv: GpuBuffer;
}

/**
 * Gradients of q, k, v given dy and the saved full probabilities att (forward mode "full"), plus
 * optionally dattLast [B,NH,T], a gradient on the probabilities of each row lengths[b]-1 that is
 * added before the softmax backward. dscores [B,NH,T,T] is scratch: on return it holds dL/dS of
 * the scaled scores for c <= t < lengths[b] (other entries undefined). Padded positions get 0.
 */
export function attentionBackward(
  rt: Runtime,
  grads: AttentionGrads,
  dy: GpuBuffer, // [B,T,NH,HS]
  att: GpuBuffer, // [B,NH,T,T]
  q: GpuBuffer, // [B,T,NH,HS]
  k: GpuBuffer, // [B,T,NKV,HS]
  v: GpuBuffer, // [B,T,NKV,HS]
  lengths: GpuBuffer, // [B] u32
  dscores: GpuBuffer, // [B,NH,T,T] scratch
  d: AttentionDims,
  dattLast?: GpuBuffer, // [B,NH,T]
): void {
  const scale = check(d);
  const { B, T, NH, NKV } = d;
  const blocks = Math.ceil(T / ROWS_PER_WORKGROUP);
  rt.dispatch("attention_backward", {
    params: { B, T, NH, NKV, HS: d.HS, scale, hasDattLast: dattLast ? 1 : 0 },
    // without dattLast any read-only buffer can stand in: the kernel never reads it
    bind: { dy, k, v, att, lengths, dattLast: dattLast ?? lengths, dscores, dq: grads.dq },
    workgroups: [blocks, NH, B],
  });
  rt.dispatch("attention_backward_dkdv", {
    params: { B, T, NH, NKV, HS: d.HS, scale },
    bind: { q, dy, att, dscores, lengths, dk: grads.dk, dv: grads.dv },
    workgroups: [blocks, NKV, 2 * B],
  });
}
