// Scaled accumulate / copy over N floats (kernels/axpy.wgsl). The float64 reference is one line
// per element and lives in test/kernels/axpy.test.ts.
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

/** y += a·x over N floats. */
export function axpy(rt: Runtime, y: GpuBuffer, x: GpuBuffer, a: number, N: number): void {
  if (N === 0) return;
  rt.dispatch("axpy:axpy", { params: { N, a }, bind: { x, y }, workgroups: grid1d(N, 256) });
}

/** y = a·x over N floats (x and y distinct buffers). */
export function scaleInto(rt: Runtime, y: GpuBuffer, x: GpuBuffer, a: number, N: number): void {
  if (N === 0) return;
  rt.dispatch("axpy:scale", { params: { N, a }, bind: { x, y }, workgroups: grid1d(N, 256) });
}
