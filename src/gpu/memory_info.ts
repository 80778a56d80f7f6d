// How much GPU memory there is. WebGPU does not say (maxBufferSize is a per-buffer limit), so we ask
// the driver's tool: nvidia-smi on NVIDIA machines; for a software adapter (lavapipe) the GPU is
// host memory. Undefined when nothing answers: callers then need --gpu-memory.
import { totalmem } from "node:os";
import type { AdapterDescription } from "./device.ts";

export function gpuMemoryBytes(adapter: AdapterDescription): number | undefined {
  if (adapter.software) return totalmem();
  if (/nvidia/i.test(`${adapter.vendor} ${adapter.description}`)) {
    try {
      const r = Bun.spawnSync(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"], { stdout: "pipe", stderr: "ignore" });
      const mib = Number(r.stdout.toString().trim().split("\n")[0]);
      if (r.exitCode === 0 && mib > 0) return mib * 2 ** 20;
    } catch {
      // no nvidia-smi on PATH
    }
  }
  return undefined;
}
