// ABFT on a real pretrained model (../shared/models/babygpt2) with real SST-2 prompts:
// - with the paper's threshold no head passes: nothing changes, bit for bit;
// - with --threshold 0.05 --lr 1e-3 --batch 8 --steps 8 the reward term breeds induction heads
//   (their mean count rises, as the paper's Fig. 5 shows) and the PID raises A in answer;
//   with --no-pid A stays at 0.5;
// - the gradient accumulated over micro-batches equals the gradient of the mean loss in one pass.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { LanguageModel } from "../../models/common.ts";
import { buildModel } from "../../models/registry.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer, type TrainConfig } from "../../src/abft/train.ts";
import { buildStandardSets, PromptBuilder, type IclPrompt } from "../../src/icl/prompts.ts";
import { loadTaskData, resolveTask, withDataPath } from "../../src/icl/tasks.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { backward, clearTape, parameter, zeroGrad } from "../../src/tensor/autodiff.ts";
import { makeBatch } from "../../models/common.ts";
import { abftObjective } from "../../src/abft/objective.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { gpuRuntime, SHARED } from "../helpers.ts";

const BABY = join(SHARED, "models", "babygpt2");
let prompts: IclPrompt[];

async function loadBaby(): Promise<LanguageModel> {
  const rt = await gpuRuntime();
  const ck = Checkpoint.open(BABY);
  const m = buildModel(rt, loadConfig(BABY), ck);
  ck.close();
  return m;
}

const cfg = (over: Partial<TrainConfig>): TrainConfig => ({
  objective: "abft", steps: 8, batch: 8, microBatch: 8, lr: 1e-3, A: 0.5, B: 1, pid: true, gains: PAPER_GAINS,
  headFilter: true, threshold: 0.05, trainBias: false, seed: 0, ...over,
});

describe("ABFT on babygpt2", () => {
  beforeAll(async () => {
    const task = withDataPath(resolveTask("sst2"), join(SHARED, "data"));
    const sets = buildStandardSets(new PromptBuilder(loadTokenizer(BABY), task), await loadTaskData(task), 0, { testQueries: 1, trainPrompts: 64 });
    prompts = sets.train;
  });
  afterAll(() => clearTape());

  test("the paper's threshold: no head passes, the parameters stay bit-identical, said once", async () => {
    const model = await loadBaby();
    const before = await Promise.all(model.qkParams().map((p) => p.tensor.toF32()));
    const t = new Trainer(model, prompts, cfg({ threshold: undefined, steps: 2 }));
    let said = 0;
    const recs = await t.run({ onNoHeads: () => said++ });
    expect(said).toBe(1);
    expect(recs.every((r) => r.inductionHeads === 0 && !r.updated)).toBe(true);
    const after = await Promise.all(model.qkParams().map((p) => p.tensor.toF32()));
    after.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(before[i].buffer))).toBe(true));
    t.dispose();
    model.dispose();
  });

  test("--threshold 0.05: induction heads multiply and the PID raises A; without PID A stays 0.5", async () => {
    const model = await loadBaby();
    const t = new Trainer(model, prompts, cfg({}));
    const recs = await t.run();
    const heads = recs.map((r) => r.inductionHeads);
    console.log(`heads per step: ${heads.map((h) => h.toFixed(1)).join(" ")}; A: ${recs.map((r) => r.A.toFixed(3)).join(" ")}`);
    expect(heads[heads.length - 1]).toBeGreaterThan(heads[0] * 1.5);
    expect(recs[recs.length - 1].A).toBeGreaterThan(0.5);
    t.dispose();
    model.dispose();

    const model2 = await loadBaby();
    const t2 = new Trainer(model2, prompts, cfg({ pid: false, steps: 4 }));
    const recs2 = await t2.run();
    expect(recs2.every((r) => r.A === 0.5)).toBe(true);
    expect(t2.state.pid.A).toBe(0.5);
    t2.dispose();
    model2.dispose();
  }, 900_000);

  test("the gradient accumulated over micro-batches equals the gradient of the mean loss", async () => {
    const model = await loadBaby();
    const rt = model.headWeight().rt;
    const params = model.qkParams();
    params.forEach((p) => parameter(p.tensor));
    const group = prompts.slice(0, 32);
    const labels = group.map((p) => ({ labelPositions: p.label_positions, correctPositions: p.correct_positions, targetToken: p.label_token_ids[p.label] }));
    const gradOf = async (micro: number) => {
      for (let s = 0; s < group.length; s += micro) {
        const b = makeBatch(rt, group.slice(s, s + micro).map((p) => p.input_ids));
        const res = await abftObjective(model, b, labels.slice(s, s + micro), { A: 0.5, B: 1, headFilter: true, threshold: 0.05 });
        backward(res.seeds(1 / group.length));
        res.dispose();
        for (const x of [b.ids, b.positions, b.lengthsT]) x.free();
      }
      const g = await Promise.all(params.map((p) => p.tensor.grad!.toF32()));
      zeroGrad(params.map((p) => p.tensor));
      return g;
    };
    const whole = await gradOf(32);
    const pieces = await gradOf(4);
    whole.forEach((w, i) => {
      let scale = 0, worst = 0;
      for (let j = 0; j < w.length; j++) {
        scale = Math.max(scale, Math.abs(w[j]));
        worst = Math.max(worst, Math.abs(w[j] - pieces[i][j]));
      }
      expect(scale).toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(1e-5 * scale);
    });
    model.dispose();
  }, 900_000);
});

describe("ABFT with LoRA on babygpt2", () => {
  // The summed loss grows with the number of heads that pass the filter, and ABFT breeds induction
  // heads; what it lowers is the loss per induction head.
  test("LoRA (r 4) over NF4 weights with --threshold 0.05 lowers the training loss per induction head", async () => {
    const rt = await gpuRuntime();
    const task = withDataPath(resolveTask("sst2"), join(SHARED, "data"));
    const sets = buildStandardSets(new PromptBuilder(loadTokenizer(BABY), task), await loadTaskData(task), 1, { testQueries: 1, trainPrompts: 8 });
    const ck = Checkpoint.open(BABY);
    const model = buildModel(rt, loadConfig(BABY), ck, { quant: "nf4", lora: true });
    ck.close();
    // the same 8 prompts every step: the loss must fall
    const t = new Trainer(model, sets.train, cfg({ batch: 8, steps: 4, lr: 1e-2, pid: false, lora: { r: 4, alpha: 8 } }));
    const recs = await t.run();
    expect(recs.every((r) => r.updated)).toBe(true);
    const perHead = recs.map((r) => r.loss / r.inductionHeads);
    console.log(`LoRA: loss per induction head ${perHead.map((x) => x.toFixed(3)).join(" ")}`);
    expect(perHead[perHead.length - 1]).toBeLessThan(perHead[0]);
    expect(t.params.every((p) => p.kind.includes("lora"))).toBe(true);
    t.dispose();
    model.dispose();
  }, 900_000);
});
