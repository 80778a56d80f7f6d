// out = a + b over N floats (kernels/residual_forward.wgsl).
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export function residualForward(rt: Runtime, out: GpuBuffer, a: GpuBuffer, b: GpuBuffer, N: number): void {
  rt.dispatch("residual_forward", { params: { N }, bind: { a, b, out }, workgroups: grid1d(N, 256) });
}
