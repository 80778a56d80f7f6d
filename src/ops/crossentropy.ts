// Cross-entropy over selected rows of logits (kernels/crossentropy_forward.wgsl,
// kernels/crossentropy_backward.wgsl): loss[r] = logsumexp(logits[r]) − logits[r, target[r]],
// optionally with the full softmax or log-softmax rows, and the gradient with respect to logits.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface CrossentropyForwardArgs {
  /** f32 [R, V] */
  logits: GpuBuffer;
  /** u32 [R], each < V (check on the host; the kernel clamps) */
  targets: GpuBuffer;
  /** f32 [R] out */
  loss: GpuBuffer;
  /** f32 [R] out: log-sum-exp of each row, needed by the backward */
  lse: GpuBuffer;
  /** f32 [R, V] out: softmax or log-softmax rows, written when `output` asks for them */
  out?: GpuBuffer;
}

export type CrossentropyOutput = "none" | "probs" | "logprobs";

const MODE: Record<CrossentropyOutput, number> = { none: 0, probs: 1, logprobs: 2 };

// The kernel's `out` binding must be bound even when not written: a 4-byte buffer made once per
// runtime stands in for it (the only allocation these functions make).
export function crossentropyForward(
  rt: Runtime,
  a: CrossentropyForwardArgs,
  R: number,
  V: number,
  output: CrossentropyOutput = "none",
): void {
  if (output !== "none" && !a.out) throw new Error(`crossentropyForward: output '${output}' needs an out buffer [R, V]`);
  if (R === 0) return;
  rt.dispatch("crossentropy_forward", {
    params: { R, V, mode: MODE[output] },
    bind: { logits: a.logits, targets: a.targets, loss: a.loss, lse: a.lse, out: output === "none" ? rt.placeholder(0) : a.out! },
    workgroups: grid1d(R, 1),
  });
}

export interface CrossentropyBackwardArgs {
  /** f32 [R, V] out (written) */
  dlogits: GpuBuffer;
  /** f32 [R] */
  dloss: GpuBuffer;
  logits: GpuBuffer;
  targets: GpuBuffer;
  /** f32 [R] from crossentropyForward */
  lse: GpuBuffer;
}

export function crossentropyBackward(rt: Runtime, a: CrossentropyBackwardArgs, R: number, V: number): void {
  if (R === 0) return;
  rt.dispatch("crossentropy_backward", {
    params: { R, V },
    bind: { dlogits: a.dlogits, dloss: a.dloss, logits: a.logits, targets: a.targets, lse: a.lse },
    workgroups: grid1d(R * V, 256),
  });
}
