// Training on the tiny GPT-2 fixture with synthetic ICL-shaped prompts: ABFT lowers its loss with
// a low threshold; with no head passing, nothing changes (bit for bit); E2E lowers cross-entropy;
// only W_Q/W_K change; a resumed run equals an uninterrupted one.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunDir } from "../../src/abft/run_dir.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer, type TrainConfig } from "../../src/abft/train.ts";
import type { IclPrompt } from "../../src/icl/prompts.ts";
import { clearTape } from "../../src/tensor/autodiff.ts";
import { Rng } from "../../src/util/random.ts";
import { gpuRuntime, testRng } from "../helpers.ts";
import { loadFixture } from "../models/fixtures.ts";

/** Prompts of 4 demonstrations whose label tokens sit at known positions; 2 labels. */
function syntheticPrompts(rng: Rng, n: number, vocab: number): IclPrompt[] {
  const labelIds = [101, 202];
  return Array.from({ length: n }, () => {
    const ids: number[] = [];
    const labels: number[] = [];
    const positions: number[] = [];
    for (let d = 0; d < 4; d++) {
      for (let i = 0, len = 3 + rng.int(5); i < len; i++) ids.push(300 + rng.int(vocab - 300));
      const y = rng.int(2);
      positions.push(ids.length);
      labels.push(y);
      ids.push(labelIds[y]);
    }
    for (let i = 0, len = 2 + rng.int(4); i < len; i++) ids.push(300 + rng.int(vocab - 300));
    const label = rng.int(2);
    return {
      input_ids: ids,
      label_positions: positions,
      correct_positions: positions.filter((_, i) => labels[i] === label),
      label,
      label_token_ids: labelIds,
    };
  });
}

const base: TrainConfig = {
  objective: "abft", steps: 4, batch: 6, microBatch: 4, lr: 1e-2, A: 0.5, B: 1, pid: true, gains: PAPER_GAINS,
  headFilter: true, threshold: 0.05, trainBias: false, seed: 3,
};

describe("training", () => {
  afterEach(() => clearTape());

  test("ABFT with a low threshold lowers the loss and changes only W_Q/W_K", async () => {
    const rt = await gpuRuntime();
    const fx = loadFixture(rt, "gpt2");
    const prompts = syntheticPrompts(testRng("train-abft"), 12, 512);
    const headBefore = await fx.model.headWeight().toF32();
    const t = new Trainer(fx.model, prompts, { ...base, steps: 6, batch: 12, A: 0.5 });
    const recs = await t.run();
    expect(recs.every((r) => r.updated)).toBe(true);
    expect(recs.every((r) => r.inductionHeads > 0)).toBe(true);
    // same prompts every step (batch = all 12): the loss must fall
    expect(recs[recs.length - 1].loss).toBeLessThan(recs[0].loss * 0.9);
    expect(Array.from(await fx.model.headWeight().toF32())).toEqual(Array.from(headBefore));
    t.dispose();
    fx.model.dispose();
  });

  test("with no head passing the filter nothing changes, and it is said once", async () => {
    const rt = await gpuRuntime();
    const fx = loadFixture(rt, "gpt2");
    const prompts = syntheticPrompts(testRng("train-noheads"), 12, 512);
    const before = await Promise.all(fx.model.qkParams().map((p) => p.tensor.toF32()));
    const t = new Trainer(fx.model, prompts, { ...base, threshold: 0.99 });
    let said = 0;
    const recs = await t.run({ onNoHeads: () => said++ });
    expect(said).toBe(1);
    expect(recs.every((r) => !r.updated && r.inductionHeads === 0)).toBe(true);
    const after = await Promise.all(fx.model.qkParams().map((p) => p.tensor.toF32()));
    after.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(before[i].buffer))).toBe(true));
    t.dispose();
    fx.model.dispose();
  });

  test("E2E lowers the cross-entropy", async () => {
    const rt = await gpuRuntime();
    const fx = loadFixture(rt, "gpt2");
    const prompts = syntheticPrompts(testRng("train-e2e"), 8, 512);
    const t = new Trainer(fx.model, prompts, { ...base, objective: "e2e", steps: 5, batch: 8 });
    const recs = await t.run();
    expect(recs[recs.length - 1].loss).toBeLessThan(recs[0].loss);
    t.dispose();
    fx.model.dispose();
  });

  test("a resumed run equals an uninterrupted one", async () => {
    const rt = await gpuRuntime();
    const prompts = syntheticPrompts(testRng("train-resume"), 12, 512);
    const dir = mkdtempSync(join(tmpdir(), "abft-resume-"));
    try {
      const fxA = loadFixture(rt, "gpt2");
      const full = new Trainer(fxA.model, prompts, base);
      const fullRecs = await full.run();
      const fullParams = await Promise.all(full.params.map((p) => p.tensor.toF32()));
      full.dispose();
      fxA.model.dispose();

      const fxB = loadFixture(rt, "gpt2");
      const first = new Trainer(fxB.model, prompts, base);
      const run = new RunDir(dir);
      const recs = [await first.step(), await first.step()];
      for (const r of recs) run.appendMetrics(r);
      await run.saveState(first, recs);
      first.dispose();
      fxB.model.dispose();

      const fxC = loadFixture(rt, "gpt2");
      const state = run.readState()!;
      expect(state.step).toBe(2);
      const resumed = new Trainer(fxC.model, prompts, base, state);
      run.loadState(resumed);
      const rest = await resumed.run();
      expect(rest.length).toBe(2);
      expect(rest.map((r) => r.A)).toEqual(fullRecs.slice(2).map((r) => r.A));
      expect(rest.map((r) => r.loss)).toEqual(fullRecs.slice(2).map((r) => r.loss));
      const params = await Promise.all(resumed.params.map((p) => p.tensor.toF32()));
      params.forEach((p, i) => expect(Array.from(p)).toEqual(Array.from(fullParams[i])));
      resumed.dispose();
      fxC.model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
