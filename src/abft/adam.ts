// Adam over a set of f32 parameters on the GPU (PyTorch semantics, no weight decay): one m and v
// buffer per parameter, bias corrections computed in float64 on the host (src/ops/adam.ts).
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { adamUpdate, type AdamConfig } from "../ops/adam.ts";
import type { Tensor } from "../tensor/tensor.ts";

export class Adam {
  /** steps taken (Adam's t); a step skipped because the gradient was zero does not count */
  t = 0;
  readonly m: GpuBuffer[];
  readonly v: GpuBuffer[];

  constructor(
    private readonly rt: Runtime,
    readonly params: Tensor[],
    readonly cfg: AdamConfig,
  ) {
    this.m = params.map((p) => this.zeros(p.size * 4, `adam-m-${p.name}`));
    this.v = params.map((p) => this.zeros(p.size * 4, `adam-v-${p.name}`));
  }

  private zeros(bytes: number, label: string): GpuBuffer {
    const b = this.rt.pool.allocate(bytes, label);
    this.rt.clear(b);
    return b;
  }

  /** One update from the parameters' accumulated `.grad`, scaled by gradScale. */
  step(gradScale = 1): void {
    this.t++;
    this.params.forEach((p, i) => {
      if (!p.grad) throw new Error(`Adam: ${p.describe()} has no gradient`);
      adamUpdate(this.rt, { param: p.buf, grad: p.grad.buf, m: this.m[i], v: this.v[i] }, p.size, this.t, this.cfg, gradScale);
    });
  }

  dispose(): void {
    for (const b of [...this.m, ...this.v]) this.rt.pool.destroy(b);
  }
}
