// The ABFT training loop (../shared/docs/abft-method.md section 4), and E2E with the same loop.
//
// Each step takes the next `batch` prompts (the pseudo-batch; the prompts are shuffled once and
// the same order is reused on the next pass), runs them in micro-batches, back-propagates the mean
// loss (seed 1/batch) into W_Q and W_K (and their biases with trainBias) — or into LoRA adapters on
// them — and takes one Adam step.
// ABFT's A follows the PID controller; B stays fixed.
// A step in which no head passes the filter has nothing to train on: its gradient is zero, we skip
// the Adam update (so the parameters stay bit-identical, and Adam's momentum does not move them
// either) and say so once per run.
import type { LanguageModel, QkParam } from "../../models/common.ts";
import { makeBatch } from "../../models/common.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { ADAM_DEFAULTS } from "../ops/adam.ts";
import { backward, clearTape, parameter, zeroGrad } from "../tensor/autodiff.ts";
import { Rng } from "../util/random.ts";
import { Adam } from "./adam.ts";
import { abftObjective, e2eObjective, type LabelInfo } from "./objective.ts";
import { pidUpdate, type PidGains, type PidState } from "./pid.ts";

export interface TrainConfig {
  objective: "abft" | "e2e";
  steps: number;
  /** pseudo-batch: prompts whose mean gradient makes one step */
  batch: number;
  /** prompts per forward/backward pass inside the pseudo-batch */
  microBatch: number;
  lr: number;
  A: number;
  B: number;
  pid: boolean;
  gains: PidGains;
  headFilter: boolean;
  /** fixed threshold instead of k/(k + ln n_t) */
  threshold?: number;
  trainBias: boolean;
  /** keep only each block's input and recompute its activations in the backward */
  recompute?: boolean;
  /** train LoRA adapters on W_Q and W_K instead of the matrices themselves */
  lora?: { r: number; alpha: number };
  /** seed of the one shuffle of the training prompts */
  seed: number;
}

export interface StepRecord {
  step: number;
  loss: number;
  A: number;
  B: number;
  /** mean over the pseudo-batch of the heads (all layers) that passed the filter */
  inductionHeads: number;
  lr: number;
  /** false when no head passed: nothing was trained */
  updated: boolean;
  seconds: number;
  samplesPerSec: number;
}

/** Everything needed to continue a run after its last finished step. */
export interface TrainState {
  step: number;
  pid: PidState;
  adamT: number;
}

export interface TrainHooks {
  onStep?: (rec: StepRecord, trainer: Trainer) => Promise<void> | void;
  /** called once, the first time a step finds no induction head */
  onNoHeads?: (step: number) => void;
  onMicroBatch?: (done: number, total: number) => void;
}

/** The trained tensors, the optimizer and the controller, stepping through the prompts. */
export class Trainer {
  readonly params: QkParam[];
  readonly adam: Adam;
  state: TrainState;
  private readonly order: number[];
  private warnedNoHeads = false;

  constructor(
    readonly model: LanguageModel,
    readonly prompts: readonly IclPrompt[],
    readonly cfg: TrainConfig,
    resume?: TrainState,
  ) {
    if (prompts.length === 0) throw new Error("no training prompts");
    this.params = cfg.lora ? model.attachLora(cfg.lora, cfg.seed) : model.qkParams(cfg.trainBias);
    for (const p of this.params) parameter(p.tensor);
    this.adam = new Adam(model.headWeight().rt, this.params.map((p) => p.tensor), { ...ADAM_DEFAULTS, lr: cfg.lr });
    this.order = new Rng(cfg.seed).shuffle([...prompts.keys()]);
    this.state = resume ?? { step: 0, pid: { A: cfg.A, history: [] }, adamT: 0 };
    this.adam.t = this.state.adamT;
  }

  /** The prompts of step s (0-based): consecutive slices of the shuffled order, wrapping around. */
  stepPrompts(s: number): IclPrompt[] {
    const n = this.order.length;
    return Array.from({ length: this.cfg.batch }, (_, i) => this.prompts[this.order[(s * this.cfg.batch + i) % n]]);
  }

  async step(hooks: TrainHooks = {}): Promise<StepRecord> {
    const t0 = performance.now();
    const s = this.state.step;
    const A = this.state.pid.A;
    const prompts = this.stepPrompts(s);
    const { batch, microBatch } = this.cfg;
    let lossSum = 0;
    let headSum = 0;
    let anyGradient = false;
    for (let start = 0; start < prompts.length; start += microBatch) {
      const group = prompts.slice(start, start + microBatch);
      const rt = this.model.headWeight().rt;
      const b = makeBatch(rt, group.map((p) => p.input_ids), this.model.config.maxPositions);
      const labels: LabelInfo[] = group.map((p) => ({
        labelPositions: p.label_positions,
        correctPositions: p.correct_positions,
        targetToken: p.label_token_ids[p.label],
      }));
      const res =
        this.cfg.objective === "abft"
          ? await abftObjective(this.model, b, labels, { A, B: this.cfg.B, headFilter: this.cfg.headFilter, threshold: this.cfg.threshold, recompute: this.cfg.recompute })
          : await e2eObjective(this.model, b, labels, this.cfg.recompute);
      lossSum += res.loss.reduce((x, y) => x + y, 0);
      const heads = res.inductionHeads.reduce((x, y) => x + y, 0);
      headSum += heads;
      if (this.cfg.objective === "e2e" || heads > 0) {
        backward(res.seeds(1 / batch));
        anyGradient = true;
      } else clearTape(); // no head passed: the gradient of this micro-batch is zero
      res.dispose();
      for (const x of [b.ids, b.positions, b.lengthsT]) x.free();
      hooks.onMicroBatch?.(Math.min(start + microBatch, prompts.length), prompts.length);
    }
    if (anyGradient) {
      this.adam.step();
    } else if (!this.warnedNoHeads) {
      this.warnedNoHeads = true;
      hooks.onNoHeads?.(s + 1);
    }
    zeroGrad(this.params.map((p) => p.tensor));
    const nT = headSum / batch;
    const pid = this.cfg.objective === "abft" ? pidUpdate(this.state.pid, nT, this.cfg.gains, this.cfg.pid) : this.state.pid;
    await this.model.headWeight().rt.sync();
    const seconds = (performance.now() - t0) / 1000;
    this.state = { step: s + 1, pid, adamT: this.adam.t };
    return {
      step: s + 1,
      loss: lossSum / batch,
      A,
      B: this.cfg.B,
      inductionHeads: nT,
      lr: this.cfg.lr,
      updated: anyGradient,
      seconds,
      samplesPerSec: batch / seconds,
    };
  }

  async run(hooks: TrainHooks = {}): Promise<StepRecord[]> {
    const records: StepRecord[] = [];
    while (this.state.step < this.cfg.steps) {
      const rec = await this.step(hooks);
      records.push(rec);
      await hooks.onStep?.(rec, this);
    }
    return records;
  }

  dispose(): void {
    this.adam.dispose();
    for (const p of this.params) {
      p.tensor.isLeaf = false;
      p.tensor.requiresGrad = false;
    }
  }
}
