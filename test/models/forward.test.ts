// Every architecture against HF transformers (float64 references in ../shared/fixtures): the
// last-position logits within 1e-4 of the largest logit, every attention probability within 1e-5,
// hidden states within 1e-4; both cases alone and together in one padded batch.
import { describe, expect, test } from "bun:test";
import { disposeForward, makeBatch } from "../../models/common.ts";
import { noGrad } from "../../src/tensor/autodiff.ts";
import { lmHead } from "../../src/tensor/ops.ts";
import { fromArray, scope } from "../../src/tensor/tensor.ts";
import { gpuRuntime } from "../helpers.ts";
import { FIXTURES, loadFixture } from "./fixtures.ts";

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, offA = 0, offB = 0, n = a.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[offA + i] - b[offB + i]));
  return m;
}

describe.each([...FIXTURES])("%s forward equals HF transformers", (name) => {
  test("logits, attentions and hidden states, alone and batched", async () => {
    const rt = await gpuRuntime();
    const fx = loadFixture(rt, name);
    const { model } = fx;
    const { nLayers: L, nHeads: NH, hiddenSize: C, vocabSize: V } = model.config;
    const seqs = fx.cases.map((c) => c.input_ids);
    // batch 0: each case alone; batch 1: both cases padded together
    for (const group of [[0], [1], [0, 1]]) {
      const batch = makeBatch(rt, group.map((i) => seqs[i]));
      const { T } = batch;
      const out = await noGrad(() =>
        scope(() => {
          const res = model.forward(batch, { attFull: true, hiddenStates: true });
          const rows = fromArray(rt, new Uint32Array(group.map((_, b) => b * T + seqs[group[b]].length - 1)), [group.length]);
          const logits = lmHead(res.hidden, model.headWeight(), rows);
          return { res, logits };
        }),
      );
      const logits = await out.logits.toF32();
      const att = await Promise.all(out.res.attFull.map((t) => t.toF32()));
      const hs = await Promise.all(out.res.hiddenStates.map((t) => t.toF32()));
      for (const [b, ci] of group.entries()) {
        const n = seqs[ci].length;
        const refLogits = fx.get(`c${ci}.logits`).data;
        const last = refLogits.subarray((n - 1) * V, n * V);
        const scale = Math.max(...last.map(Math.abs));
        expect(maxAbsDiff(logits, last, b * V, 0, V) / scale).toBeLessThan(1e-4);
        const refAtt = fx.get(`c${ci}.attentions`).data; // [L, NH, n, n]
        let worstAtt = 0;
        for (let l = 0; l < L; l++)
          for (let h = 0; h < NH; h++)
            for (let t = 0; t < n; t++)
              worstAtt = Math.max(worstAtt, maxAbsDiff(att[l], refAtt, ((b * NH + h) * T + t) * T, ((l * NH + h) * n + t) * n, n));
        if (process.env.SHOW_DIFFS) console.log(name, group, "att", worstAtt, "logits", maxAbsDiff(logits, last, b * V, 0, V) / scale);
        expect(worstAtt).toBeLessThan(1e-5);
        const refHs = fx.get(`c${ci}.hidden_states`).data; // [L+1, n, C]
        expect(hs.length).toBe(L + 1);
        for (let l = 0; l <= L; l++) {
          const hsScale = Math.max(1, ...refHs.subarray(l * n * C, (l + 1) * n * C).map(Math.abs));
          expect(maxAbsDiff(hs[l], refHs, b * T * C, l * n * C, n * C) / hsScale).toBeLessThan(1e-4);
        }
      }
      out.logits.free();
      disposeForward(out.res);
      for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
    }
    model.dispose();
  });
});
