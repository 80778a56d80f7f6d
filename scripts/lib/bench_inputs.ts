// Shared by the kernel benchmark cases (scripts/bench/*.ts): large random inputs made from one
// random block repeated (filling gigabytes from a JS PRNG would dominate the run), and a
// correctness check that runs once per runtime before any timing.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import type { Rng } from "../../src/util/random.ts";

/** values per random block */
export const TILE = 1 << 20;

/** An exact-size buffer of `words` 32-bit words holding `tile` repeated. */
export function repeatTile(rt: Runtime, words: number, tile: Float32Array | Uint32Array, label: string): GpuBuffer {
  const b = rt.pool.allocate(words * 4, label);
  for (let off = 0; off < words; off += tile.length) rt.write(b, tile.subarray(0, Math.min(tile.length, words - off)), off * 4);
  return b;
}

/** An exact-size buffer of n floats holding a random block (normal, standard deviation `scale`) repeated. */
export function randomBuffer(rt: Runtime, n: number, rng: Rng, label: string, scale = 1): GpuBuffer {
  return repeatTile(rt, n, rng.normalF32(Math.min(n, TILE), scale), label);
}

/** `check(rt)` once per runtime, however many cases ask for it. */
export function oncePerRuntime(check: (rt: Runtime) => Promise<void>): (rt: Runtime) => Promise<void> {
  const done = new WeakMap<Runtime, Promise<void>>();
  return (rt) => {
    let p = done.get(rt);
    if (!p) done.set(rt, (p = check(rt)));
    return p;
  };
}

/** tokens x prompts of an ABFT pseudo-batch (160-token prompts, 32 of them) */
export const ROWS = 160 * 32;

/**
 * Throws unless a matmul-like result of reductions of length L matches the reference:
 * |got - want| <= 4·eps·L + 1e-5·|want| (see sumTol in test/kernels/matmul.test.ts).
 */
export function checkReduction(got: ArrayLike<number>, want: ArrayLike<number>, L: number, what: string): void {
  const atol = 4 * 2 ** -23 * L;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + 1e-5 * Math.abs(want[i]))) throw new Error(`${what}: [${i}] got ${got[i]} want ${want[i]}`);
  }
}
