// Tables larger than one storage binding (src/ops/table_slices.ts): the embedding gather and the LM
// head read them a vocabulary slice per dispatch. Forced here with a tiny binding limit on random
// tables of awkward sizes: sliced results equal the unsliced ones bit for bit where each value is
// computed once (gather, logits), equal the float64 reference, and the backward (which adds slice
// after slice) matches the reference within an f32 summation's error.
import { describe, expect, test } from "bun:test";
import type { GpuBuffer, Runtime } from "../../src/gpu/runtime.ts";
import { embeddingForward } from "../../src/ops/embedding.ts";
import { lmHeadBackward, lmHeadBackwardScratchBytes, lmHeadForward } from "../../src/ops/lm_head.ts";
import type { WeightDtype } from "../../src/ops/matmul.ts";
import { tableSlices } from "../../src/ops/table_slices.ts";
import { packHalves, unpackHalves } from "../../src/ref/dtype.ts";
import { embeddingForward as embeddingRef } from "../../src/ref/embedding.ts";
import { lmHeadBackward as lmBackwardRef, lmHeadForward as lmForwardRef } from "../../src/ref/lm_head.ts";
import type { Rng } from "../../src/util/random.ts";
import { expectClose, gpuRuntime, testRng } from "../helpers.ts";

const EPS32 = 2 ** -23;

function table(rng: Rng, n: number, dtype: WeightDtype): { data: Float32Array | Uint32Array; values: Float64Array } {
  const raw = rng.normalF32(n);
  if (dtype === "f32") return { data: raw, values: Float64Array.from(raw) };
  const data = packHalves(raw, dtype);
  return { data, values: unpackHalves(data, n, dtype) };
}

/** A binding limit that cuts a [V, C] table into about `parts` slices (at least one aligned step each). */
function limitFor(rt: Runtime, V: number, C: number, dtype: WeightDtype, parts: number): number {
  const align = rt.gpu.limits.minStorageBufferOffsetAlignment;
  const rowBytes = C * (dtype === "f32" ? 4 : 2);
  let step = 1;
  while ((step * rowBytes) % align !== 0) step++;
  const rowsPer = Math.max(step, Math.ceil(V / parts / step) * step);
  return rowsPer * rowBytes + 4; // a little over: slices end on whole aligned steps anyway
}

/** Runs `fn` with the runtime's slice limit lowered to `limit` bytes. */
async function withSliceLimit<T>(rt: Runtime, limit: number, fn: () => T | Promise<T>): Promise<T> {
  const saved = rt.sliceLimit;
  rt.sliceLimit = limit;
  try {
    return await fn();
  } finally {
    rt.sliceLimit = saved;
  }
}

function release(rt: Runtime, ...bufs: (GpuBuffer | undefined)[]): void {
  for (const b of bufs) if (b) rt.pool.release(b);
}

const DTYPES: WeightDtype[] = ["f32", "bf16", "f16"];

test("tableSlices cuts at aligned whole rows, covers every row once, and refuses rows wider than a binding", async () => {
  const rt = await gpuRuntime();
  const align = rt.gpu.limits.minStorageBufferOffsetAlignment;
  for (const [V, C, dtype] of [[1000, 13, "f32"], [777, 13, "bf16"], [301, 70, "f16"], [50, 1, "f32"]] as const) {
    const bytes = dtype === "f32" ? 4 : 2;
    const buf = rt.pool.acquire(Math.ceil((V * C * bytes) / 4) * 4);
    const slices = await withSliceLimit(rt, limitFor(rt, V, C, dtype, 3), () => tableSlices(rt, buf, V, C, dtype));
    expect(slices.length).toBeGreaterThan(1);
    let next = 0;
    for (const s of slices) {
      expect(s.row0).toBe(next);
      next += s.rows;
      if ("of" in s.binding) {
        expect(s.binding.offset % align).toBe(0);
        expect(s.binding.offset).toBe(s.row0 * C * bytes);
        expect(s.binding.size).toBeGreaterThanOrEqual(s.rows * C * bytes);
        expect(s.binding.offset + s.binding.size).toBeLessThanOrEqual(buf.size);
      }
    }
    expect(next).toBe(V);
    // a table that fits is bound whole
    expect(await withSliceLimit(rt, buf.size, () => tableSlices(rt, buf, V, C, dtype))).toEqual([{ row0: 0, rows: V, binding: buf }]);
    release(rt, buf);
  }
  const wide = rt.pool.acquire(4096);
  await withSliceLimit(rt, 512, () => {
    expect(() => tableSlices(rt, wide, 4, 256, "f32", "wide table")).toThrow(/wide table: a slice of 1 rows of 1024 bytes is larger than/);
  });
  release(rt, wide);
});

test("a misaligned slice binding is refused with the buffer's name", async () => {
  const rt = await gpuRuntime();
  const buf = rt.pool.allocate(4096, "some-table");
  const out = rt.pool.acquire(64);
  const ids = rt.upload(new Uint32Array([0]));
  expect(() =>
    rt.dispatch("embedding_forward:forward_f32", {
      params: { N: 1, C: 1, V: 1, P: 1, usePos: 0, row0: 0, rows: 1 },
      bind: { out, ids, pos: ids, wte: { of: buf, offset: 2, size: 64 }, wpe: buf },
      workgroups: [1],
    }),
  ).toThrow(/slice \[2, 66\) of buffer 'some-table' \(4096 bytes\) is not a valid binding/);
  rt.pool.destroy(buf);
  release(rt, out, ids);
});

describe("sliced tables", () => {
  test("embedding gather (with learned positions) equals the unsliced gather and the reference", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("table-slices-embedding");
    for (const dtype of DTYPES) {
      const V = 1003, C = 13, P = 9, N = 157;
      const wte = table(rng, V * C, dtype), wpe = table(rng, P * C, dtype);
      // every slice gets tokens, including the first and last rows
      const ids = Uint32Array.from({ length: N }, (_, i) => (i === 0 ? 0 : i === 1 ? V - 1 : rng.int(V)));
      const pos = Uint32Array.from({ length: N }, () => rng.int(P));
      const WTE = rt.upload(wte.data), WPE = rt.upload(wpe.data), IDS = rt.upload(ids), POS = rt.upload(pos);
      const whole = rt.pool.acquire(N * C * 4), sliced = rt.pool.acquire(N * C * 4);
      embeddingForward(rt, { out: whole, ids: IDS, wte: WTE, wpe: WPE, pos: POS }, { N, C, V, P, dtype });
      await withSliceLimit(rt, limitFor(rt, V, C, dtype, 4), () => {
        expect(tableSlices(rt, WTE, V, C, dtype).length).toBeGreaterThanOrEqual(3);
        embeddingForward(rt, { out: sliced, ids: IDS, wte: WTE, wpe: WPE, pos: POS }, { N, C, V, P, dtype });
      });
      const a = await rt.readF32(whole, N * C), b = await rt.readF32(sliced, N * C);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      expectClose(b, embeddingRef(ids, wte.values, C, wpe.values, pos), { rtol: 1e-6, atol: 1e-6, label: `sliced embedding ${dtype}` });
      release(rt, WTE, WPE, IDS, POS, whole, sliced);
    }
  });

  test("LM head forward, all columns and chosen columns, equals the unsliced head and the reference", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("table-slices-lm-head");
    for (const dtype of DTYPES) {
      const M = 23, C = 37, V = 611, R = 5;
      const h = rng.normalF32(M * C);
      const w = table(rng, V * C, dtype);
      const rows = Uint32Array.from(rng.sample(M, R));
      // chosen columns from every slice, one twice, plus the first and last ids
      const cols = Uint32Array.from([0, V - 1, ...Array.from({ length: 9 }, () => rng.int(V)), 5]);
      const H = rt.upload(h), W = rt.upload(w.data), ROWS = rt.upload(rows), COLS = rt.upload(cols);
      const limit = limitFor(rt, V, C, dtype, 3);
      await withSliceLimit(rt, limit, () => expect(tableSlices(rt, W, V, C, dtype).length).toBeGreaterThanOrEqual(2));
      for (const chosen of [COLS, undefined]) {
        const J = chosen ? cols.length : V;
        const whole = rt.pool.acquire(R * J * 4), sliced = rt.pool.acquire(R * J * 4);
        lmHeadForward(rt, { logits: whole, h: H, weight: W, rows: ROWS, cols: chosen }, { R, J, C, M, V, dtype });
        await withSliceLimit(rt, limit, () => lmHeadForward(rt, { logits: sliced, h: H, weight: W, rows: ROWS, cols: chosen }, { R, J, C, M, V, dtype }));
        const a = await rt.readF32(whole, R * J), b = await rt.readF32(sliced, R * J);
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
        expectClose(b, lmForwardRef(h, w.values, rows, chosen ? cols : null, C, V), {
          rtol: 1e-5, atol: 4 * EPS32 * C + 1e-7, label: `sliced lm_head forward ${dtype} ${chosen ? "chosen" : "all"} columns`,
        });
        release(rt, whole, sliced);
      }
      release(rt, H, W, ROWS, COLS);
    }
  });

  test("LM head backward over slices adds every slice's part into dh, with and without split-K", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("table-slices-lm-head-backward");
    for (const dtype of DTYPES) {
      const M = 17, C = 29, V = 487, R = 4;
      const w = table(rng, V * C, dtype);
      const rows = Uint32Array.from(rng.sample(M, R));
      const cols = Uint32Array.from([V - 1, 0, ...Array.from({ length: 6 }, () => rng.int(V))]);
      const W = rt.upload(w.data), ROWS = rt.upload(rows), COLS = rt.upload(cols);
      const limit = limitFor(rt, V, C, dtype, 3);
      for (const [chosen, splits] of [[COLS, 1], [undefined, 1], [undefined, 3]] as const) {
        const J = chosen ? cols.length : V;
        const dlogits = rng.normalF32(R * J);
        const init = rng.normalF32(M * C);
        const DL = rt.upload(dlogits), DH = rt.upload(init);
        const bytes = lmHeadBackwardScratchBytes({ R, C, splits });
        const scratch = bytes > 0 ? rt.pool.acquire(bytes) : undefined;
        await withSliceLimit(rt, limit, () =>
          lmHeadBackward(rt, { dh: DH, dlogits: DL, weight: W, rows: ROWS, cols: chosen, scratch }, { R, J, C, M, V, dtype, splits }),
        );
        const want = lmBackwardRef(dlogits, w.values, rows, chosen ? cols : null, M, C, V).map((v, i) => v + init[i]);
        expectClose(await rt.readF32(DH, M * C), want, {
          rtol: 1e-5, atol: 4 * EPS32 * (J + 4) + 1e-7, label: `sliced lm_head backward ${dtype} ${chosen ? "chosen" : "all"} splits ${splits}`,
        });
        release(rt, DL, DH, scratch);
      }
      release(rt, W, ROWS, COLS);
    }
  });
});
