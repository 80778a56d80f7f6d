// `abft run`: the main job. Evaluates the model (vanilla), trains W_Q/W_K with ABFT (or E2E),
// evaluates again, prints a summary, and writes the run directory as it goes (src/abft/run_dir.ts).
// `--resume DIR` continues an interrupted run from its last saved step with the settings it had.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import type { LanguageModel } from "../../models/common.ts";
import { PAPER_GAINS } from "../abft/pid.ts";
import { defaultRunDir, RunDir } from "../abft/run_dir.ts";
import { savePeftAdapter } from "../abft/peft.ts";
import { Trainer, type StepRecord, type TrainConfig } from "../abft/train.ts";
import { writeRunFigures } from "../analysis/run_figures.ts";
import { attentionStats } from "../eval/attention_stats.ts";
import { AbftError, formatBytes } from "../gpu/errors.ts";
import { gpuMemoryBytes } from "../gpu/memory_info.ts";
import { isQuantFormat, QUANT_FORMATS, type QuantFormat } from "../ops/quant.ts";
import { estimateMemory, planMemory } from "../abft/memory.ts";
import { parameterCount } from "../../models/common.ts";
import type { ModelConfig } from "../io/config.ts";
import type { ModelSource } from "../io/model_source.ts";
import { adapterLine } from "../gpu/device.ts";
import { getRuntime } from "../gpu/runtime.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { VERSION } from "./version.ts";
import { evaluatePrompts, formatReport } from "./eval.ts";
import { floatOption, intOption, openModel, resolveWithProgress } from "./load.ts";
import { progress, say } from "./progress.ts";
import { taskPrompts } from "./task_setup.ts";

/** Every setting of a run, as config.json records it. */
export interface RunSettings {
  abft: string;
  model: string;
  model_source: { dir: string; repoId?: string; revision?: string };
  task: string;
  data?: string;
  seed: number;
  k?: number;
  trainSize: number;
  testQueries?: number;
  trainPrompts?: string;
  testPrompts?: string;
  microBatch: number | "auto";
  evalMicroBatch: number;
  saveEvery: number;
  /** storage of the frozen weights */
  quant: QuantFormat | "none";
  statsPrompts: number;
  train: TrainConfig;
  prompts?: Record<string, unknown>;
}

interface RunOptions {
  model: string; task: string; data?: string; seed: number; k?: number; trainSize: number; testQueries?: number;
  trainPrompts?: string; testPrompts?: string; objective: string; steps: number; batch: number; microBatch: number | "auto";
  evalMicroBatch: number; lr?: number; recompute?: boolean; quant?: string; quantCache?: boolean; loraR?: number; loraAlpha?: number; gpuMemory?: number; A: number; B: number; pid: boolean; Cp: number; Ci: number; Cd: number;
  headFilter: boolean; threshold?: number; trainBias: boolean; out?: string; resume?: string; saveEvery: number;
  statsPrompts: number; evalBefore: boolean; revision?: string;
}

function settingsFrom(o: RunOptions, src: { dir: string; repoId?: string; revision?: string; config: ModelConfig }): RunSettings {
  if (o.objective !== "abft" && o.objective !== "e2e") throw new AbftError(`--objective must be abft or e2e, got '${o.objective}'`, "BAD_ARGS");
  // the paper: 4-bit weights and LoRA (r 16, lr 1e-4) above ~10B parameters, full W_Q/W_K (lr 2e-5) below
  const big = parameterCount(src.config) > 10e9;
  const quant = (o.quant ?? (big ? "nf4" : "none")) as QuantFormat | "none";
  if (quant !== "none" && !isQuantFormat(quant)) throw new AbftError(`--quant must be one of none, ${QUANT_FORMATS.join(", ")}, got '${quant}'`, "BAD_ARGS");
  const loraR = o.loraR ?? (quant !== "none" ? 16 : undefined);
  if (quant !== "none" && loraR === undefined) throw new AbftError("quantized weights cannot be trained directly: give --lora-r", "BAD_ARGS");
  const lora = loraR ? { r: loraR, alpha: o.loraAlpha ?? 2 * loraR } : undefined;
  return {
    abft: VERSION,
    model: o.model,
    model_source: { dir: src.dir, repoId: src.repoId, revision: src.revision },
    task: o.task,
    data: o.data,
    seed: o.seed,
    k: o.k,
    trainSize: o.trainSize,
    testQueries: o.testQueries,
    trainPrompts: o.trainPrompts,
    testPrompts: o.testPrompts,
    microBatch: o.microBatch,
    evalMicroBatch: o.evalMicroBatch,
    saveEvery: o.saveEvery,
    quant,
    statsPrompts: o.statsPrompts,
    train: {
      objective: o.objective,
      steps: o.steps,
      batch: o.batch,
      microBatch: o.microBatch === "auto" ? 0 : o.microBatch, // 0: chosen from the memory estimate at start
      lr: o.lr ?? (lora ? 1e-4 : 2e-5),
      A: o.A,
      B: o.B,
      pid: o.pid,
      gains: { Cp: o.Cp, Ci: o.Ci, Cd: o.Cd },
      headFilter: o.headFilter,
      threshold: o.threshold,
      trainBias: o.trainBias,
      recompute: !!o.recompute,
      lora,
      seed: o.seed,
    },
  };
}

/**
 * The micro-batch: the one asked for, or the largest that the memory estimate fits in the GPU's
 * memory (src/abft/memory.ts). Refuses, with the estimate and the memory, when one prompt does not fit.
 */
function chooseMicroBatch(
  s: RunSettings, config: ModelConfig, tokens: number, budget: number | undefined, adapter: string,
): { microBatch: number; recompute: boolean } {
  const opts = { format: s.quant, loraRank: s.train.lora?.r ?? 0, tokens, head: s.train.objective === "e2e", storedBytes: config.dtype === "float32" ? 4 : 2 };
  const one = estimateMemory(config, { ...opts, microBatch: 1, recompute: true });
  if (budget !== undefined && one.total > budget) {
    throw new AbftError(
      `GPU out of memory: training needs about ${formatBytes(one.total)} even one prompt at a time (weights ${formatBytes(one.weights)}, ` +
        `activations ${formatBytes(one.activationsPerPrompt)} per prompt); ${adapter} has ${formatBytes(budget)}`,
      "GPU_OOM",
      "use --quant nf4 with --lora-r 16, shorter prompts (--k), or a GPU with more memory (--gpu-memory GB if it was misread)",
    );
  }
  if (s.train.microBatch > 0) {
    const fits = budget === undefined || estimateMemory(config, { ...opts, microBatch: s.train.microBatch }).total <= budget;
    return { microBatch: s.train.microBatch, recompute: !!s.train.recompute || !fits };
  }
  if (budget === undefined) return { microBatch: 8, recompute: !!s.train.recompute };
  const plan = planMemory(config, opts, budget, s.train.batch);
  return plan ? { microBatch: plan.microBatch, recompute: plan.recompute || !!s.train.recompute } : { microBatch: 1, recompute: true };
}

async function evalAndStats(model: LanguageModel, run: RunDir, name: "before" | "after", test: IclPrompt[], s: RunSettings, labels: readonly string[]) {
  const ev = await evaluatePrompts(model, test, `eval ${name}`, s.evalMicroBatch, labels);
  const result = { ...ev.report, seconds: ev.seconds, inputsPerSec: test.length / ev.seconds };
  run.writeJson(`eval_${name}.json`, result);
  const stats = await attentionStats(model, test.slice(0, s.statsPrompts), { microBatch: s.evalMicroBatch, threshold: s.train.threshold });
  run.writeJson(`attention_${name}.json`, stats);
  say(`abft: ${name === "before" ? "vanilla" : "trained"}: ${formatReport(ev.report, labels)}`);
  return result;
}

/**
 * ||θ' − θ||_F per layer for W_Q and W_K: from host copies of the initial values, or for LoRA from
 * the adapters, ||s·B·A||_F² = s² · trace((BᵀB)(AAᵀ)) with r×r matrices (cheap at any size).
 */
async function parameterShift(trainer: Trainer, initial: Float32Array[]): Promise<{ layers: { layer: number; q: number; k: number }[] }> {
  const byLayer = new Map<number, { layer: number; q: number; k: number }>();
  const row = (l: number) => byLayer.get(l) ?? byLayer.set(l, { layer: l, q: 0, k: 0 }).get(l)!;
  const lora = trainer.model.loraConfig();
  for (const [i, p] of trainer.params.entries()) {
    if (p.kind === "q" || p.kind === "k") {
      const now = await p.tensor.toF32();
      let ss = 0;
      for (let j = 0; j < now.length; j++) ss += (now[j] - initial[i][j]) ** 2;
      row(p.layer)[p.kind] = Math.sqrt(ss);
    } else if (lora && (p.kind === "q_lora_B" || p.kind === "k_lora_B")) {
      const Ap = trainer.params.find((x) => x.layer === p.layer && x.kind === (p.kind === "q_lora_B" ? "q_lora_A" : "k_lora_A"))!;
      const [A, B] = [await Ap.tensor.toF32(), await p.tensor.toF32()];
      const r = lora.r, K = A.length / r, N = B.length / r;
      const BtB = new Float64Array(r * r), AAt = new Float64Array(r * r);
      for (let a = 0; a < r; a++)
        for (let b = 0; b < r; b++) {
          let x = 0, y = 0;
          for (let n = 0; n < N; n++) x += B[n * r + a] * B[n * r + b];
          for (let k = 0; k < K; k++) y += A[a * K + k] * A[b * K + k];
          BtB[a * r + b] = x;
          AAt[a * r + b] = y;
        }
      let tr = 0;
      for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) tr += BtB[a * r + b] * AAt[b * r + a];
      row(p.layer)[p.kind === "q_lora_B" ? "q" : "k"] = (lora.alpha / lora.r) * Math.sqrt(Math.max(tr, 0));
    }
  }
  return { layers: [...byLayer.values()].sort((a, b) => a.layer - b.layer) };
}

export async function runJob(o: RunOptions): Promise<void> {
  let settings: RunSettings;
  let run: RunDir;
  let src: ModelSource;
  if (o.resume) {
    if (!existsSync(o.resume)) throw new AbftError(`--resume ${o.resume}: no such run directory`, "BAD_RUN_DIR");
    run = new RunDir(o.resume);
    settings = run.readJson<RunSettings>("config.json");
    say(`abft: resuming ${o.resume}`);
    const m = settings.model_source;
    src = await resolveWithProgress(m.dir && existsSync(m.dir) ? m.dir : settings.model, m.revision);
  } else {
    src = await resolveWithProgress(o.model, o.revision);
    settings = settingsFrom(o, src);
    run = new RunDir(o.out ?? defaultRunDir(o.model, o.task));
  }
  const rt = await getRuntime();
  say(`abft: ${adapterLine(rt.gpu.adapter)}; run directory ${run.path}`);
  const tp = await taskPrompts(
    src,
    { task: settings.task, data: settings.data, seed: settings.seed, k: settings.k, trainSize: settings.trainSize, testQueries: settings.testQueries, trainPrompts: settings.trainPrompts, testPrompts: settings.testPrompts },
    { train: true, test: true },
  );
  settings.prompts = tp.provenance;
  if (!o.resume) run.writeJson("config.json", settings);
  const labels = tp.task.labelWords;
  // the memory estimate comes before loading: a run that cannot fit stops before it spends minutes loading
  const tokens = Math.ceil(Math.max(...tp.train.map((p) => p.input_ids.length)) / 16) * 16;
  const budget = o.gpuMemory !== undefined ? o.gpuMemory * 2 ** 30 : gpuMemoryBytes(rt.gpu.adapter);
  const { microBatch, recompute } = chooseMicroBatch(settings, src.config, tokens, budget, adapterLine(rt.gpu.adapter));
  settings.train = { ...settings.train, microBatch, recompute };
  if (!o.resume) run.writeJson("config.json", settings);
  const model = await openModel(src, { quant: settings.quant, lora: !!settings.train.lora, quantCache: o.quantCache });
  say(`abft: ${settings.train.lora ? `LoRA r ${settings.train.lora.r} on W_Q/W_K` : "training W_Q/W_K"}${settings.quant !== "none" ? `, frozen weights in ${settings.quant}` : ""}; micro-batch ${microBatch}${recompute ? ", activations recomputed in the backward" : ""}`);
  const t0 = performance.now();
  const before = run.has("eval_before.json") ? run.readJson<{ accuracy: number }>("eval_before.json") : o.evalBefore ? await evalAndStats(model, run, "before", tp.test, settings, labels) : null;

  // training
  const records: StepRecord[] = run.readMetrics();
  const saved = o.resume ? run.readState() : null;
  const trainer = new Trainer(model, tp.train, settings.train, saved ?? undefined);
  const initial = await Promise.all(trainer.params.map((p) => p.tensor.toF32())); // the base values, for shift.json
  if (saved) run.loadState(trainer);
  if (o.resume) {
    // steps after the last saved state are run again; their records are dropped
    records.splice(saved?.step ?? 0);
    await Bun.write(run.file("metrics.jsonl"), records.map((r) => JSON.stringify(r) + "\n").join(""));
    say(`abft: continuing after step ${saved?.step ?? 0} of ${settings.train.steps}`);
  }
  const bar = progress(`train ${settings.train.objective}`, settings.train.steps, "steps");
  bar.update(trainer.state.step);
  await trainer.run({
    onNoHeads: (step) =>
      say(`abft: step ${step}: no head passes the induction-head filter (threshold ${settings.train.threshold ?? "k/(k + ln n_t)"}), so ABFT has nothing to train on; the parameters stay unchanged while this lasts`),
    onStep: async (rec, tr) => {
      records.push(rec);
      run.appendMetrics(rec);
      bar.update(rec.step, `loss ${rec.loss.toFixed(4)} A ${rec.A.toFixed(3)} heads ${rec.inductionHeads.toFixed(1)}`);
      if (rec.step % settings.saveEvery === 0 || rec.step === settings.train.steps) await run.saveState(tr, records);
    },
  });
  bar.stop();
  const trainSeconds = records.reduce((s, r) => s + r.seconds, 0);
  const meta = {
    base_model: settings.model,
    base_revision: settings.model_source.revision ?? "",
    model_type: model.config.modelType,
    objective: settings.train.objective,
    task: settings.task,
    quant: settings.quant,
    ...(settings.train.lora ? { lora_r: String(settings.train.lora.r), lora_alpha: String(settings.train.lora.alpha) } : {}),
  };
  await run.saveTrained(trainer.params, meta);
  if (settings.train.lora) {
    await savePeftAdapter(run.file("peft"), model, trainer.params, settings.model_source.repoId ?? settings.model, settings.model_source.revision);
  }
  run.writeJson("shift.json", await parameterShift(trainer, initial));
  const after = await evalAndStats(model, run, "after", tp.test, settings, labels);
  const trained = trainer.params.reduce((n, p) => n + p.tensor.size, 0);
  const samples = records.length * settings.train.batch;
  const summary = {
    model: settings.model,
    task: tp.task.name,
    objective: settings.train.objective,
    accuracy_before: before?.accuracy ?? null,
    accuracy_after: after.accuracy,
    trained_parameters: trained,
    train_seconds: trainSeconds,
    samples_per_second: samples / Math.max(trainSeconds, 1e-9),
    total_seconds: (performance.now() - t0) / 1000,
    adapter: rt.gpu.adapter.description,
  };
  run.writeJson("summary.json", summary);
  try {
    const figs = await writeRunFigures(run.path);
    if (figs.length) say(`abft: figures ${figs.map((f) => f.replace(/^.*\//, "")).join(", ")}`);
  } catch (e) {
    say(`abft: warning: the run's figures could not be drawn: ${(e as Error).message}`); // the run itself is complete
  }
  trainer.dispose();
  model.dispose();
  const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(2)}%`);
  const rows = [
    ["model", settings.model],
    ["task", tp.task.name],
    [`accuracy, vanilla`, pct(summary.accuracy_before)],
    [`accuracy, ${settings.train.objective.toUpperCase()}`, pct(summary.accuracy_after)],
    ["trained parameters", trained.toLocaleString("en-US")],
    ["training time", `${trainSeconds.toFixed(1)} s (${summary.samples_per_second.toFixed(2)} samples/s)`],
    ["run directory", run.path],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n"));
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("evaluate, fine-tune W_Q/W_K with ABFT (or E2E), evaluate again; writes a run directory as it goes")
    .option("--model <dir|repo>", "model folder or hub repo id", "openai-community/gpt2-large")
    .option("--revision <rev>", "hub revision of the model")
    .option("--task <name|spec.json>", "sst2, mr, fp, sst5, trec, subj, tee, teh, or a task spec file", "sst2")
    .option("--data <path>", "folder with the task's files, or one JSONL/CSV/TSV/Parquet file (default: the hub)")
    .option("--seed <n>", "seed of the split, the prompts and the training order", intOption("--seed"), 0)
    .option("--objective <abft|e2e>", "ABFT (attention loss) or E2E (cross-entropy on the label token)", "abft")
    .option("--steps <n>", "optimisation steps", intOption("--steps", 1), 32)
    .option("--batch <n>", "pseudo-batch: prompts per step (their mean gradient)", intOption("--batch", 1), 32)
    .option("--micro-batch <n|auto>", "prompts per forward/backward pass inside a step (auto: the most the GPU memory fits)", (v) => (v === "auto" ? "auto" : intOption("--micro-batch", 1)(v)), "auto")
    .option("--recompute", "keep only each block's input and recompute its activations in the backward (chosen automatically when memory is short)")
    .option("--quant <format>", "store the frozen weights as nf4, nf4dq (double-quantized scales) or int8 (default: none under 10B parameters, nf4 above)")
    .option("--quant-cache", "keep the quantized weights on disk (beside the HF cache, or $ABFT_QUANT_CACHE) and load them from there next time (default: on for hub models)")
    .option("--no-quant-cache", "neither read nor write the quantized-weight cache")
    .option("--lora-r <n>", "train LoRA adapters of rank r on W_Q/W_K instead of the matrices (default 16 with --quant)", intOption("--lora-r", 1))
    .option("--lora-alpha <x>", "LoRA scaling numerator (default 2r)", floatOption("--lora-alpha", 0))
    .option("--gpu-memory <GB>", "GPU memory to plan for, when it cannot be read (nvidia-smi)", floatOption("--gpu-memory", 0.1))
    .option("--eval-micro-batch <n>", "prompts per forward pass in evaluation", intOption("--eval-micro-batch", 1), 16)
    .option("--lr <x>", "Adam learning rate (default 2e-5; 1e-4 with LoRA)", floatOption("--lr", 0))
    .option("--train-size <n>", "training prompts", intOption("--train-size", 1), 512)
    .option("--test-queries <n>", "test queries (each with 2 demonstration sets)", intOption("--test-queries", 1))
    .option("--k <n>", "demonstrations per prompt", intOption("--k", 1))
    .option("--A <x>", "initial weight of the wrong-label term (A_0)", floatOption("--A", 0), 0.5)
    .option("--B <x>", "weight of the correct-label term (B_0)", floatOption("--B", 0), 1.0)
    .option("--no-pid", "keep A fixed (no PID controller)")
    .option("--Cp <x>", "PID proportional gain", floatOption("--Cp"), PAPER_GAINS.Cp)
    .option("--Ci <x>", "PID integral gain", floatOption("--Ci"), PAPER_GAINS.Ci)
    .option("--Cd <x>", "PID derivative gain", floatOption("--Cd"), PAPER_GAINS.Cd)
    .option("--no-head-filter", "train every head, not only induction heads")
    .option("--threshold <x>", "fixed induction-head threshold instead of k/(k + ln n_t)", floatOption("--threshold", 0))
    .option("--train-bias", "also train the q and k biases (GPT-2, Qwen2)")
    .option("--train-prompts <file>", "train on exactly these prompts (JSONL from `abft prompts`)")
    .option("--test-prompts <file>", "evaluate on exactly these prompts")
    .option("--no-eval-before", "skip the vanilla evaluation")
    .option("--stats-prompts <n>", "test prompts used for the per-layer attention statistics", intOption("--stats-prompts", 1), 64)
    .option("--save-every <n>", "save the resumable state every n steps (and after the last)", intOption("--save-every", 1), 4)
    .option("--out <dir>", "run directory (default runs/<timestamp>-<model>-<task>)")
    .option("--resume <dir>", "continue an interrupted run from its last saved state")
    .action(async (o: RunOptions) => runJob(o));
}
