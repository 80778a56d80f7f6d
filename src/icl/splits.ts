// Seeded data splits and demonstration sampling (../shared/docs/abft-method.md §2, StaICC's
// protocol): everything comes from src/util/random.ts's Rng (sfc32), never Math.random, so the same
// seed gives the same pools and prompts on every machine.
//
// Pools (indices into TaskData.examples; which files feed each side, per task: tasks.ts):
// - split "pooled": one seeded shuffle of all examples; the first trainPool of it are the training
//   pool, the next demoPool the demonstration pool, the next testQueries the test queries.
// - split "separate": one seeded shuffle of the train side gives the training pool then the
//   demonstration pool; one seeded shuffle of the test side gives the test queries.
// The three are disjoint by construction. A task with too few examples is an error giving the numbers.
//
// Prompts (PromptSpec: k demonstration indices + a query index):
// - training: trainPrompts prompts, each k+1 distinct training-pool examples drawn at random; the
//   first k are the demonstrations (in draw order), the last is the query.
// - test: every test query gets demoSets independently drawn sets of k distinct demonstration-pool
//   examples; the list is query-major (input i = query floor(i / demoSets), set i % demoSets).
// - calibration (StaICC's contextual calibration): n prompts of k demonstrations drawn WITH
//   replacement from the training pool and an empty query (query = -1).
//
// Every stream has its own seed, derived from (seed, purpose), so changing one size (say, the number
// of training prompts) does not move the pools or the other streams.
import { Rng } from "../util/random.ts";
import { AbftError } from "../gpu/errors.ts";
import type { TaskData } from "./tasks.ts";

export interface SplitSizes {
  /** training pool size (1024) */
  trainPool: number;
  /** training prompts drawn from it (n_d = 512) */
  trainPrompts: number;
  /** demonstrations per prompt (4) */
  k: number;
  /** demonstration pool size; undefined: the task's own (4096; FP 512; TEE 3192) */
  demoPool?: number;
  /** test queries (512) */
  testQueries: number;
  /** demonstration sets per test query (2 → 1024 test inputs) */
  demoSets: number;
}

export const DEFAULT_SIZES: Readonly<SplitSizes> = { trainPool: 1024, trainPrompts: 512, k: 4, testQueries: 512, demoSets: 2 };

export interface TaskSplit {
  seed: number;
  trainPool: number[];
  demoPool: number[];
  testQueries: number[];
}

/** k demonstration indices and a query index (-1: an empty, content-free query). */
export interface PromptSpec {
  demos: number[];
  query: number;
}

export class SplitError extends AbftError {
  constructor(message: string, hint?: string) {
    super(message, "BAD_SPLIT", hint);
  }
}

/** A 32-bit seed for one purpose ("split", "train", "test", ...), from the user's seed (FNV-1a mix). */
export function deriveSeed(seed: number, purpose: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  h = Math.imul(h, 0x01000193) >>> 0;
  for (let i = 0; i < purpose.length; i++) {
    h = Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) >>> 0;
  }
  // a final avalanche so that nearby seeds give unrelated streams
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function resolveSizes(data: TaskData, sizes: Partial<SplitSizes> = {}): Required<SplitSizes> {
  const s = { ...DEFAULT_SIZES, demoPool: data.task.demoPool, ...dropUndefined(sizes) } as Required<SplitSizes>;
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 0) throw new SplitError(`${k} = ${v}: sizes must be non-negative integers`);
  }
  if (s.k < 1) throw new SplitError(`k = ${s.k}: at least one demonstration is needed`);
  return s;
}

/** The three disjoint pools of a task (see the file header). */
export function makeSplit(data: TaskData, seed: number, sizes: Partial<SplitSizes> = {}): TaskSplit {
  const s = resolveSizes(data, sizes);
  const name = data.task.name;
  const rng = new Rng(deriveSeed(seed, "split"));
  if (data.split === "pooled") {
    const n = data.examples.length;
    const need = s.trainPool + s.demoPool + s.testQueries;
    if (need > n) {
      throw new SplitError(
        `task ${name}: the pooled split needs ${s.trainPool} (training pool) + ${s.demoPool} (demonstration pool) + ` +
          `${s.testQueries} (test queries) = ${need} examples, but the task has ${n}`,
        "ask for smaller pools (train size, demonstration pool, test queries)",
      );
    }
    const order = rng.sample(n, need);
    return {
      seed,
      trainPool: order.slice(0, s.trainPool),
      demoPool: order.slice(s.trainPool, s.trainPool + s.demoPool),
      testQueries: order.slice(s.trainPool + s.demoPool),
    };
  }
  const nTrain = data.nTrainSide;
  const nTest = data.examples.length - nTrain;
  const needTrain = s.trainPool + s.demoPool;
  if (needTrain > nTrain || s.testQueries > nTest) {
    throw new SplitError(
      `task ${name}: the separate split needs ${s.trainPool} (training pool) + ${s.demoPool} (demonstration pool) = ${needTrain} ` +
        `examples from the train files (they hold ${nTrain}) and ${s.testQueries} test queries from the test files (they hold ${nTest})`,
      "ask for smaller pools, or use the pooled split",
    );
  }
  const pools = rng.sample(nTrain, needTrain);
  const testRng = new Rng(deriveSeed(seed, "split-test"));
  const queries = testRng.sample(nTest, s.testQueries).map((i) => nTrain + i);
  return { seed, trainPool: pools.slice(0, s.trainPool), demoPool: pools.slice(s.trainPool), testQueries: queries };
}

/** k distinct positions of [0, n), in draw order (rejection for small k, partial shuffle otherwise). */
export function sampleDistinct(rng: Rng, n: number, k: number): number[] {
  if (k > n) throw new SplitError(`cannot draw ${k} distinct examples from ${n}`);
  if (k * 4 > n) return rng.sample(n, k);
  const out: number[] = [];
  while (out.length < k) {
    const x = rng.int(n);
    if (!out.includes(x)) out.push(x);
  }
  return out;
}

/** n_d training prompts: k+1 distinct training-pool examples each, the last one the query. */
export function sampleTrainPrompts(split: TaskSplit, opts: { trainPrompts?: number; k?: number; seed?: number } = {}): PromptSpec[] {
  const count = opts.trainPrompts ?? DEFAULT_SIZES.trainPrompts;
  const k = opts.k ?? DEFAULT_SIZES.k;
  const pool = split.trainPool;
  if (k + 1 > pool.length) throw new SplitError(`a training prompt needs k + 1 = ${k + 1} distinct examples, the training pool has ${pool.length}`);
  const rng = new Rng(deriveSeed(opts.seed ?? split.seed, "train-prompts"));
  const out: PromptSpec[] = [];
  for (let p = 0; p < count; p++) {
    const pick = sampleDistinct(rng, pool.length, k + 1).map((i) => pool[i]);
    out.push({ demos: pick.slice(0, k), query: pick[k] });
  }
  return out;
}

/** The test inputs: every test query with demoSets sets of k distinct demonstrations (query-major). */
export function sampleTestPrompts(
  split: TaskSplit,
  opts: { k?: number; demoSets?: number; seed?: number; queries?: number[] } = {},
): PromptSpec[] {
  const k = opts.k ?? DEFAULT_SIZES.k;
  const sets = opts.demoSets ?? DEFAULT_SIZES.demoSets;
  const pool = split.demoPool;
  if (k > pool.length) throw new SplitError(`a test input needs k = ${k} distinct demonstrations, the demonstration pool has ${pool.length}`);
  const rng = new Rng(deriveSeed(opts.seed ?? split.seed, "test-prompts"));
  const out: PromptSpec[] = [];
  for (const q of opts.queries ?? split.testQueries) {
    for (let s = 0; s < sets; s++) out.push({ demos: sampleDistinct(rng, pool.length, k).map((i) => pool[i]), query: q });
  }
  return out;
}

/**
 * StaICC's contextual-calibration prompts: n prompts of k demonstrations drawn with replacement
 * from the training pool, with an empty query (query = -1).
 */
export function sampleCalibrationPrompts(split: TaskSplit, opts: { n?: number; k?: number; seed?: number } = {}): PromptSpec[] {
  const n = opts.n ?? 512;
  const k = opts.k ?? DEFAULT_SIZES.k;
  const pool = split.trainPool;
  if (pool.length === 0) throw new SplitError("calibration prompts need a non-empty training pool");
  const rng = new Rng(deriveSeed(opts.seed ?? split.seed, "calibration"));
  const out: PromptSpec[] = [];
  for (let p = 0; p < n; p++) {
    const demos: number[] = [];
    for (let j = 0; j < k; j++) demos.push(pool[rng.int(pool.length)]);
    out.push({ demos, query: -1 });
  }
  return out;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
