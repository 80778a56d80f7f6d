// residual_forward: out = a + b (12 bytes moved per element).
import { residualForward } from "../../src/ops/residual.ts";
import { Rng } from "../../src/util/random.ts";
import type { BenchCase } from "./types.ts";

function residualCase(N: number, size: string, quick = false): BenchCase {
  return {
    kernel: "residual_forward",
    size,
    bytes: 12 * N,
    quick,
    async setup(rt) {
      const rng = new Rng(1);
      const a = rt.upload(rng.normalF32(N)), b = rt.upload(rng.normalF32(N));
      const out = rt.pool.acquire(N * 4);
      return {
        run: () => residualForward(rt, out, a, b, N),
        cleanup: () => [a, b, out].forEach((x) => rt.pool.release(x)),
      };
    },
  };
}

export const cases: BenchCase[] = [
  residualCase(163 * 4096, "163 tokens x 4096", true),
  residualCase(5120 * 4096, "5120 tokens x 4096 (llama-3-8b, 32x160)"),
];
