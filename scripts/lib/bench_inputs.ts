// Shared by the kernel benchmark cases (scripts/bench/*.ts): large random inputs made from one
// random block repeated (filling gigabytes from a JS PRNG would dominate the run), and a
// correctness check that runs once per runtime before any timing.
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import type { Rng } from "../../src/util/random.ts";

/** values per random block */
export const TILE = 1 << 20;

/** An exact-size buffer of n floats holding a random block repeated. */
export function randomBuffer(rt: Runtime, n: number, rng: Rng, label: string): GpuBuffer {
  const tile = rng.normalF32(Math.min(n, TILE));
  const b = rt.pool.allocate(n * 4, label);
  for (let off = 0; off < n; off += tile.length) rt.write(b, tile.subarray(0, Math.min(tile.length, n - off)), off * 4);
  return b;
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
