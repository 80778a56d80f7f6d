// ABFT and E2E gradients into W_Q and W_K (and the q/k biases where the fixture has them) against
// HF transformers + PyTorch autograd in float64 (../shared/fixtures: A = 0.5, B = 1, the fixture's
// threshold_used, the loss summed over layers and heads). Also the loss values and the number of
// induction heads. GPT-2's fixture gradient covers the whole fused c_attn [C, 3C]: we compare its
// Q and K column blocks (V is not trained by ABFT).
import { describe, expect, test } from "bun:test";
import { makeBatch, type QkParam } from "../../models/common.ts";
import { abftObjective, e2eObjective, type LabelInfo } from "../../src/abft/objective.ts";
import { backward, parameter, zeroGrad } from "../../src/tensor/autodiff.ts";
import { gpuRuntime } from "../helpers.ts";
import { FIXTURES, loadFixture, type Fixture } from "./fixtures.ts";

/** The fixture's gradient for one of our parameters, in our layout ([out, in] / [out]). */
function refGrad(fx: Fixture, prefix: string, p: QkParam, C: number): Float32Array {
  if (fx.model.config.modelType !== "gpt2") return fx.get(`${prefix}${p.name}`).data;
  const block = p.kind.startsWith("q") ? 0 : 1;
  const name = `${prefix}transformer.${p.name}`;
  const g = fx.get(name).data;
  if (p.kind === "q_bias" || p.kind === "k_bias") return g.slice(block * C, (block + 1) * C);
  const out = new Float32Array(C * C); // c_attn [C_in, 3C] → our [C_out, C_in]
  for (let i = 0; i < C; i++) for (let o = 0; o < C; o++) out[o * C + i] = g[i * 3 * C + block * C + o];
  return out;
}

describe.each([...FIXTURES])("%s gradients equal PyTorch autograd", (name) => {
  for (const objective of ["abft", "e2e"] as const) {
    test(`${objective} loss and dL/dW_Q, dL/dW_K`, async () => {
      const rt = await gpuRuntime();
      const fx = loadFixture(rt, name);
      const C = fx.model.config.hiddenSize;
      const withBias = fx.qkParams.some((n) => n.endsWith("bias")) || name === "gpt2";
      const params = fx.model.qkParams(withBias);
      params.forEach((p) => parameter(p.tensor));
      for (const [ci, c] of fx.cases.entries()) {
        const batch = makeBatch(rt, [c.input_ids]);
        const labels: LabelInfo[] = [{ labelPositions: c.label_positions, correctPositions: c.correct_positions, targetToken: c.target_token }];
        const res =
          objective === "abft"
            ? await abftObjective(fx.model, batch, labels, { A: 0.5, B: 1, headFilter: true, threshold: c.threshold_used })
            : await e2eObjective(fx.model, batch, labels);
        const want = objective === "abft" ? c.abft_loss : c.e2e_loss;
        expect(Math.abs(res.loss[0] - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
        if (objective === "abft") {
          expect(res.inductionHeads[0]).toBe(c.n_induction_heads);
          const mask = fx.get(`c${ci}.head_mask`).data;
          expect(Array.from(res.masks.flatMap((m) => Array.from(m)))).toEqual(Array.from(mask));
        }
        backward(res.seeds(1));
        res.dispose();
        for (const p of params) {
          const got = await p.tensor.grad!.toF32();
          const ref = refGrad(fx, `c${ci}.${objective}_grad.`, p, C);
          let scale = 0, worst = 0;
          for (let i = 0; i < ref.length; i++) {
            scale = Math.max(scale, Math.abs(ref[i]));
            worst = Math.max(worst, Math.abs(got[i] - ref[i]));
          }
          if (process.env.SHOW_DIFFS) console.log(name, objective, p.layer, p.kind, worst / Math.max(scale, 1e-12), scale);
          expect(worst).toBeLessThanOrEqual(1e-4 * scale + 1e-7);
        }
        zeroGrad(params.map((p) => p.tensor));
        for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
      }
      fx.model.dispose();
    });
  }
});

// A vocabulary table over the adapter's binding limit (Llama-3's embedding on lavapipe) is read a
// slice at a time: forced here by lowering the runtime's slice limit to a third of the table.
describe("E2E through an embedding and LM head bound in slices", () => {
  for (const name of ["gpt2", "llama"] as const) {
    test(`${name}: loss and dL/dW_Q, dL/dW_K equal PyTorch autograd`, async () => {
      const rt = await gpuRuntime();
      const fx = loadFixture(rt, name);
      const C = fx.model.config.hiddenSize;
      const params = fx.model.qkParams();
      params.forEach((p) => parameter(p.tensor));
      const saved = rt.sliceLimit;
      rt.sliceLimit = Math.ceil(fx.model.headWeight().byteLength / 3);
      try {
        for (const [ci, c] of fx.cases.entries()) {
          const batch = makeBatch(rt, [c.input_ids]);
          const res = await e2eObjective(fx.model, batch, [{ labelPositions: c.label_positions, correctPositions: c.correct_positions, targetToken: c.target_token }]);
          expect(Math.abs(res.loss[0] - c.e2e_loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(c.e2e_loss)));
          backward(res.seeds(1));
          res.dispose();
          for (const p of params) {
            const got = await p.tensor.grad!.toF32();
            const ref = refGrad(fx, `c${ci}.e2e_grad.`, p, C);
            let scale = 0, worst = 0;
            for (let i = 0; i < ref.length; i++) {
              scale = Math.max(scale, Math.abs(ref[i]));
              worst = Math.max(worst, Math.abs(got[i] - ref[i]));
            }
            expect(worst).toBeLessThanOrEqual(1e-4 * scale + 1e-7);
          }
          zeroGrad(params.map((p) => p.tensor));
          for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
        }
      } finally {
        rt.sliceLimit = saved;
        fx.model.dispose();
      }
    });
  }
});
