// Gathers the per-layer outputs of the ABFT loss (loss, mask, S, each f32 [B·NH]) into one buffer
// [L, 3, B·NH] (kernels/abft_loss_pack.wgsl), so that the objective reads every layer back at once:
// one GPU round trip per call instead of three per layer. A bit-exact copy; the float64 reference
// is the identity and lives in test/kernels/abft_loss_pack.test.ts.
import { GpuRuntimeError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";

export interface AbftLossPackDims {
  /** values per output (B·NH) */
  N: number;
  /** which slot [layer, 0..2, :] of the packed buffer to fill */
  layer: number;
}

/** packed[layer] = [loss, mask, S] (packed f32 [L, 3, N], at least (layer + 1)·3·N floats). */
export function abftLossPack(
  rt: Runtime,
  packed: GpuBuffer, // [L, 3, N], only the layer's 3·N floats written
  out: { loss: GpuBuffer; mask: GpuBuffer; S: GpuBuffer }, // each f32 [N]
  d: AbftLossPackDims,
): void {
  const { N, layer } = d;
  if (!Number.isInteger(N) || N < 0 || !Number.isInteger(layer) || layer < 0) {
    throw new GpuRuntimeError(`abftLossPack: N = ${N}, layer = ${layer} must be non-negative integers`);
  }
  if ((layer + 1) * 3 * N * 4 > packed.size) {
    throw new GpuRuntimeError(`abftLossPack: layer ${layer} of ${3 * N} floats does not fit buffer '${packed.label}' (${packed.size} bytes)`);
  }
  if (N === 0) return;
  rt.dispatch("abft_loss_pack", {
    params: { N, layer },
    bind: { loss: out.loss, mask: out.mask, S: out.S, packed },
    workgroups: grid1d(N, 64),
  });
}
