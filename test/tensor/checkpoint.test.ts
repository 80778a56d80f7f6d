// Activation recomputation: with `recompute`, each block keeps only its input and is run again in
// the backward. The ABFT and E2E gradients into W_Q/W_K (and LoRA adapters) must equal those of
// the plain tape, and the PyTorch references of the fixtures; fewer activations stay saved.
import { afterEach, describe, expect, test } from "bun:test";
import { makeBatch } from "../../models/common.ts";
import { abftObjective, e2eObjective } from "../../src/abft/objective.ts";
import { backward, clearTape, parameter, zeroGrad } from "../../src/tensor/autodiff.ts";
import { gpuRuntime, testRng } from "../helpers.ts";
import { loadFixture } from "../models/fixtures.ts";

describe.each(["gpt2", "llama"])("recompute on the %s fixture", (name) => {
  afterEach(() => clearTape());

  test("ABFT and E2E gradients equal the plain tape's, with less memory held", async () => {
    const rt = await gpuRuntime();
    const fx = loadFixture(rt, name);
    const c = fx.cases[0];
    const params = fx.model.qkParams(name === "gpt2");
    params.forEach((p) => parameter(p.tensor));
    const labels = [{ labelPositions: c.label_positions, correctPositions: c.correct_positions, targetToken: c.target_token }];
    const grads = async (objective: "abft" | "e2e", recompute: boolean) => {
      const batch = makeBatch(rt, [c.input_ids]);
      const inUse0 = rt.pool.stats.inUse;
      const res =
        objective === "abft"
          ? await abftObjective(fx.model, batch, labels, { A: 0.5, B: 1, headFilter: true, threshold: c.threshold_used, recompute })
          : await e2eObjective(fx.model, batch, labels, recompute);
      const held = rt.pool.stats.inUse - inUse0; // activations the tape keeps for the backward
      backward(res.seeds(1));
      res.dispose();
      const g = await Promise.all(params.map((p) => p.tensor.grad!.toF32()));
      zeroGrad(params.map((p) => p.tensor));
      for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
      return { g, held, loss: res.loss[0] };
    };
    for (const objective of ["abft", "e2e"] as const) {
      const plain = await grads(objective, false);
      const again = await grads(objective, true);
      expect(again.loss).toBe(plain.loss);
      expect(again.held).toBeLessThan(plain.held);
      plain.g.forEach((p, i) => {
        let scale = 0;
        for (const x of p) scale = Math.max(scale, Math.abs(x));
        for (let j = 0; j < p.length; j++) expect(Math.abs(again.g[i][j] - p[j])).toBeLessThanOrEqual(1e-6 * scale + 1e-9);
      });
    }
    fx.model.dispose();
  });
});

test("recompute with LoRA adapters gives the plain tape's adapter gradients", async () => {
  const rt = await gpuRuntime();
  const fx = loadFixture(rt, "llama");
  const rng = testRng("checkpoint-lora");
  const params = fx.model.attachLora({ r: 2, alpha: 4 }, 3);
  for (const p of params) if (p.kind.endsWith("_B")) rt.write(p.tensor.buf, rng.normalF32(p.tensor.size, 0.1));
  const c = fx.cases[1];
  const labels = [{ labelPositions: c.label_positions, correctPositions: c.correct_positions, targetToken: c.target_token }];
  const grads = async (recompute: boolean) => {
    const batch = makeBatch(rt, [c.input_ids]);
    const res = await abftObjective(fx.model, batch, labels, { A: 0.5, B: 1, headFilter: false, recompute });
    backward(res.seeds(1));
    res.dispose();
    const g = await Promise.all(params.map((p) => p.tensor.grad!.toF32()));
    zeroGrad(params.map((p) => p.tensor));
    for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
    return g;
  };
  const plain = await grads(false);
  const again = await grads(true);
  plain.forEach((p, i) => {
    const scale = Math.max(...Array.from(p, Math.abs));
    expect(scale).toBeGreaterThan(0);
    p.forEach((x, j) => expect(Math.abs(again[i][j] - x)).toBeLessThanOrEqual(1e-6 * scale));
  });
  clearTape();
  fx.model.dispose();
});
