// What a kernel benchmark case provides to scripts/bench.ts. Each scripts/bench/<op>.ts exports
// `cases: BenchCase[]`; the runner checks nothing itself: setup() must verify correctness on a
// small input first (against src/ref) when `check` is true, then return the closure to time.
import type { Runtime } from "../../src/gpu/runtime.ts";

export interface BenchCase {
  /** kernel or op name, e.g. "matmul_forward" */
  kernel: string;
  /** human size, e.g. "4096x4096x4096" or "gpt2-xl c_attn 5120x1600x4800" */
  size: string;
  /** floating-point operations of one run (for TFLOP/s), if compute-bound */
  flops?: number;
  /** bytes read + written by one run (for GB/s), if memory-bound */
  bytes?: number;
  /** allocate and fill inputs; return `run` (records one run's dispatches) and `cleanup` */
  setup(rt: Runtime): Promise<{ run: () => void; cleanup: () => void }>;
  /** true for cases small enough to run on lavapipe in the default (quick) mode */
  quick?: boolean;
}
