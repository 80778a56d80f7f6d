// Rotary position embeddings, forward and backward (kernels/rotary_forward.wgsl,
// kernels/rotary_backward.wgsl). x [B,T,NH,HS] with NH the heads of that tensor (NH for q, NKV for k);
// positions [B,T] u32 (no default: for pos = t upload sequentialPositions from src/ref/rotary.ts);
// invFreq [HS/2] f32 from ropeInvFreq in src/ref/rotary.ts. Out of place: out must not alias inp.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface RotaryDims {
  B: number;
  T: number;
  /** heads of the rotated tensor */
  NH: number;
  HS: number;
}

function pairs(d: RotaryDims): number {
  if (d.HS % 2 !== 0) throw new GpuRuntimeError(`rotary: head size HS = ${d.HS} must be even`);
  return (d.B * d.T * d.NH * d.HS) / 2;
}

/** out = rotate(inp) by positions * invFreq */
export function rotaryForward(
  rt: Runtime,
  out: GpuBuffer, // [B,T,NH,HS] written
  inp: GpuBuffer, // [B,T,NH,HS]
  positions: GpuBuffer, // [B,T] u32
  invFreq: GpuBuffer, // [HS/2]
  d: RotaryDims,
): void {
  const N = pairs(d);
  rt.dispatch("rotary_forward", {
    params: { N, NH: d.NH, HS: d.HS },
    bind: { inp, positions, invFreq, out },
    workgroups: grid1d(N, 256),
  });
}

/** dinp = dout rotated back (written, not accumulated) */
export function rotaryBackward(
  rt: Runtime,
  dinp: GpuBuffer, // [B,T,NH,HS] written
  dout: GpuBuffer, // [B,T,NH,HS]
  positions: GpuBuffer, // [B,T] u32
  invFreq: GpuBuffer, // [HS/2]
  d: RotaryDims,
): void {
  const N = pairs(d);
  rt.dispatch("rotary_backward", {
    params: { N, NH: d.NH, HS: d.HS },
    bind: { dout, positions, invFreq, dinp },
    workgroups: grid1d(N, 256),
  });
}
