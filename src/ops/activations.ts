// GELU (GPT-2 gelu_new, tanh form) and SwiGLU (Llama / Qwen2 MLP) forward and backward: thin
// wrappers that dispatch kernels/gelu_{forward,backward}.wgsl and kernels/swiglu_{forward,backward}.wgsl.
// Elementwise over N floats (N = B*T*4C for GPT-2's MLP, B*T*F for Llama's). SwiGLU takes gate and
// up as two separate (N) buffers. Input gradients are written, or added to the existing contents
// with `accumulate: true`. Outputs must not alias inputs. Nothing is allocated.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { GpuRuntimeError } from "../gpu/errors.ts";
import { grid1d } from "./grid.ts";

const WG = 256;

function need(kernel: string, N: number, bufs: Record<string, GpuBuffer>): void {
  if (!Number.isInteger(N) || N < 0) throw new GpuRuntimeError(`${kernel}: bad element count N=${N}`);
  for (const [name, b] of Object.entries(bufs)) {
    if (b.size < N * 4) throw new GpuRuntimeError(`${kernel}: buffer '${name}' (${b.label}) has ${b.size} bytes, needs ${N * 4}`);
  }
}

/** out (N) = gelu_new(inp (N)). */
export function geluForward(rt: Runtime, b: { out: GpuBuffer; inp: GpuBuffer }, d: { N: number }): void {
  need("gelu_forward", d.N, b);
  rt.dispatch("gelu_forward", { params: { N: d.N }, bind: b, workgroups: grid1d(d.N, WG) });
}

/** dinp (N) = dout * gelu_new'(inp), written or (accumulate) added. */
export function geluBackward(
  rt: Runtime,
  b: { dinp: GpuBuffer; inp: GpuBuffer; dout: GpuBuffer },
  d: { N: number; accumulate?: boolean },
): void {
  need("gelu_backward", d.N, b);
  rt.dispatch("gelu_backward", {
    params: { N: d.N, accumulate: d.accumulate ? 1 : 0 },
    bind: b,
    workgroups: grid1d(d.N, WG),
  });
}

/** out (N) = silu(gate (N)) * up (N). */
export function swigluForward(
  rt: Runtime,
  b: { out: GpuBuffer; gate: GpuBuffer; up: GpuBuffer },
  d: { N: number },
): void {
  need("swiglu_forward", d.N, b);
  rt.dispatch("swiglu_forward", { params: { N: d.N }, bind: b, workgroups: grid1d(d.N, WG) });
}

/** dgate (N) = dout * up * silu'(gate), dup (N) = dout * silu(gate); written or (accumulate) added. */
export function swigluBackward(
  rt: Runtime,
  b: { dgate: GpuBuffer; dup: GpuBuffer; gate: GpuBuffer; up: GpuBuffer; dout: GpuBuffer },
  d: { N: number; accumulate?: boolean },
): void {
  need("swiglu_backward", d.N, b);
  rt.dispatch("swiglu_backward", {
    params: { N: d.N, accumulate: d.accumulate ? 1 : 0 },
    bind: b,
    workgroups: grid1d(d.N, WG),
  });
}
