// Reverse-mode automatic differentiation over GPU tensors: a tape of recorded ops.
//
// - An op is recorded only when one of its inputs requires a gradient (a parameter, or the output
//   of a recorded op), so the frozen parts of a model (embeddings, V, O, MLP, norms, LM head below
//   the first trained layer) leave nothing on the tape: only what the requested gradients need.
// - Each recorded op retains the tensors its backward rule saved; backward() drops them right after
//   the rule ran, so activations are freed layer by layer on the way down.
// - noGrad() records nothing and keeps nothing (evaluation).
// - Parameter gradients accumulate across backward() calls (micro-batches of a pseudo-batch) in
//   `param.grad` until zeroGrad().
// Rules live with their ops in src/tensor/ops.ts; each says what it saves and which input
// gradients it computes.
import { axpy } from "../ops/axpy.ts";
import { borrow, scope, Tensor, untracked } from "./tensor.ts";

/** A gradient: a tensor, or a number s meaning d(s · sum(output)) / d(output) (for loss ops). */
export type Grad = Tensor | number;

export interface Node {
  op: string;
  inputs: Tensor[];
  outputs: Tensor[];
  saved: Tensor[];
  /** input gradients (null where not needed or not defined), given the outputs' gradients */
  backward(douts: (Grad | null)[], needs: boolean[]): (Tensor | null)[];
}

let gradEnabled = true;
let tape: Node[] = [];

/** Runs fn without recording anything. */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return await fn();
  } finally {
    gradEnabled = before;
  }
}

/** Marks a tensor as a parameter: backward() accumulates its gradient into `.grad`. */
export function parameter(t: Tensor): Tensor {
  t.isLeaf = true;
  t.requiresGrad = true;
  return t;
}

/** True when an op on these inputs would be recorded. */
export function recording(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Records an op if any input requires a gradient. Retains the saved tensors. */
export function record(
  op: string,
  inputs: Tensor[],
  outputs: Tensor[],
  saved: Tensor[],
  backward: Node["backward"],
): void {
  if (!recording(inputs)) return;
  for (const t of saved) t.retain();
  for (const o of outputs) o.requiresGrad = true;
  tape.push({ op, inputs, outputs, saved, backward });
}

/** Number of ops on the tape (tests use it to check that frozen parts record nothing). */
export function tapeLength(): number {
  return tape.length;
}

/** The op names on the tape, in order. */
export function tapeOps(): string[] {
  return tape.map((n) => n.op);
}

function addInto(dst: Tensor, src: Tensor): void {
  axpy(dst.rt, dst.buf, src.buf, 1, dst.size);
}

/**
 * Back-propagates from `seeds` through the whole tape, then clears it. Gradients of parameters
 * are accumulated into their `.grad`; everything else is freed as soon as it has been used.
 */
export function backward(seeds: { tensor: Tensor; grad: Grad }[]): void {
  untracked(() => {
    const grads = new Map<number, Grad>();
    for (const { tensor, grad } of seeds) {
      if (!tensor.requiresGrad) throw new Error(`backward: ${tensor.describe()} does not depend on any parameter`);
      grads.set(tensor.id, grad);
    }
    const nodes = tape;
    tape = [];
    let n = nodes.length - 1;
    try {
      for (; n >= 0; n--) {
        const node = nodes[n];
        const douts = node.outputs.map((o) => grads.get(o.id) ?? null);
        if (douts.some((g) => g !== null)) {
          const needs = node.inputs.map((t) => t.requiresGrad);
          const dins = node.backward(douts, needs);
          for (const o of node.outputs) {
            const g = grads.get(o.id);
            if (g instanceof Tensor) g.dispose();
            grads.delete(o.id);
          }
          node.inputs.forEach((input, k) => {
            const d = dins[k];
            if (!d) return;
            if (!needs[k]) return d.dispose();
            if (input.isLeaf) {
              if (input.grad) {
                addInto(input.grad, d);
                d.dispose();
              } else input.grad = d;
              return;
            }
            const prev = grads.get(input.id);
            if (prev instanceof Tensor) {
              addInto(prev, d);
              d.dispose();
            } else if (prev === undefined) grads.set(input.id, d);
            else throw new Error(`backward: ${input.describe()} got both a scalar seed and a tensor gradient`);
          });
        }
        for (const t of node.saved) t.dispose();
      }
    } finally {
      for (const g of grads.values()) if (g instanceof Tensor) g.dispose();
      // after an error: free what the nodes not yet reached had saved
      for (let m = n; m >= 0; m--) for (const t of nodes[m].saved) t.dispose();
    }
  });
}

/** Drops the tape without back-propagating (after an aborted step), freeing what it saved. */
export function clearTape(): void {
  for (const node of tape) for (const t of node.saved) t.dispose();
  tape = [];
}

/** Frees the accumulated gradients of these parameters. */
export function zeroGrad(params: Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

/**
 * Activation recomputation ("gradient checkpointing") for a block: `fn(...inputs)` runs without
 * recording, keeping only the inputs; its backward runs `fn` again with recording on a private tape
 * and back-propagates through it, so the block's activations exist only while its own backward runs.
 * `trains` says whether the block holds parameters that want gradients (the inputs alone may not:
 * the first layer's input is the frozen embedding). Outputs are a list; the rule takes their grads.
 */
export function checkpoint(inputs: Tensor[], trains: boolean, fn: (...xs: Tensor[]) => Tensor[]): Tensor[] {
  if (!gradEnabled || !(trains || inputs.some((t) => t.requiresGrad))) return fn(...inputs);
  const outs = noGrad(() => fn(...inputs));
  const wants = inputs.map((t) => t.requiresGrad);
  // every output depends on the block's parameters: mark them so consumers record their ops
  for (const o of outs) o.requiresGrad = true;
  const node: Node = {
    op: "checkpoint",
    inputs,
    outputs: outs,
    saved: inputs,
    backward: (douts) => {
      const outer = tape;
      tape = [];
      const views = inputs.map((t, i) => {
        const v = borrow(t);
        v.isLeaf = wants[i];
        v.requiresGrad = wants[i];
        return v;
      });
      try {
        const again = scope(() => fn(...views));
        const seeds = again.flatMap((t, i) => (douts[i] !== null && t.requiresGrad ? [{ tensor: t, grad: douts[i]! }] : []));
        // the caller's gradient tensors stay the caller's: the inner backward must not free them
        for (const s of seeds) if (s.grad instanceof Tensor) s.grad.retain();
        backward(seeds);
        for (const t of again) t.free();
        return views.map((v) => {
          const g = v.grad;
          v.grad = null;
          return g;
        });
      } finally {
        clearTape();
        tape = outer;
      }
    },
  };
  for (const t of inputs) t.retain();
  tape.push(node);
  return outs;
}
