// Shared test helpers: the GPU runtime (refusing Dawn's null adapter), fresh seeds, and an
// llm.c-style comparison that reports the first mismatches and the largest error.
import { expect } from "bun:test";
import { adapterLine } from "../src/gpu/device.ts";
import { getRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { freshSeed, Rng } from "../src/util/random.ts";

export const SHARED = new URL("../../shared/", import.meta.url).pathname;

/** The runtime on a real adapter. Throws (never skips) when only the null adapter exists. */
export async function gpuRuntime(): Promise<Runtime> {
  const rt = await getRuntime();
  if (rt.gpu.adapter.backend === "null") throw new Error("tests refuse Dawn's null adapter");
  if (!announced) {
    announced = true;
    console.log(`GPU tests run on: ${adapterLine(rt.gpu.adapter)}`);
  }
  return rt;
}
let announced = false;

/** A fresh random generator; its seed is printed so that a failing case can be replayed (SEED=...). */
export function testRng(label: string): Rng {
  const seed = process.env.SEED ? Number(process.env.SEED) : freshSeed();
  if (process.env.VERBOSE_SEEDS) console.log(`${label}: seed ${seed}`);
  seedsUsed.push(`${label}=${seed}`);
  return new Rng(seed);
}
export const seedsUsed: string[] = [];

/**
 * Asserts |got - want| <= atol + rtol * |want| elementwise. On failure the message lists the first
 * mismatches, the max absolute and relative error, and the seeds used so far.
 */
export function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, label = "" }: { rtol?: number; atol?: number; label?: string } = {},
): void {
  expect(got.length).toBe(want.length);
  let maxAbs = 0;
  let maxRel = 0;
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const ok = d <= atol + rtol * Math.abs(want[i]);
    if (!(d <= maxAbs)) maxAbs = d;
    const rel = d / Math.max(Math.abs(want[i]), 1e-30);
    if (rel > maxRel) maxRel = rel;
    if (!ok && bad.length < 5) bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
    if (Number.isNaN(got[i]) !== Number.isNaN(want[i]) && bad.length < 5) bad.push(`[${i}] NaN mismatch`);
  }
  if (bad.length) {
    throw new Error(
      `${label} mismatch (rtol ${rtol}, atol ${atol}): max abs ${maxAbs.toExponential(3)}, max rel ${maxRel.toExponential(3)}; ` +
        `${bad.join("; ")}; seeds ${seedsUsed.join(" ")}`,
    );
  }
}
