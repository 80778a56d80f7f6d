// `abft eval`: in-context accuracy of a model (or a run directory's fine-tuned model) on a task's
// 1024 test inputs, with macro-F1 and per-class accuracy, optionally with contextual calibration.
// The result is printed and written as JSON.
import type { Command } from "commander";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { LanguageModel } from "../../models/common.ts";
import { sampleCalibrationPrompts } from "../icl/splits.ts";
import { buildTemplateConsistencyPrompts, sampleDemoConsistency, sampleUnseenLabelPrompts } from "../icl/templates.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { predict } from "../eval/evaluate.ts";
import {
  calibratedPredictions, classificationReport, demonstrationConsistency, meanDistribution, templateConsistency, zhaoContentFree,
  type ClassificationReport,
} from "../eval/metrics.ts";
import { AbftError } from "../gpu/errors.ts";
import { intOption } from "./load.ts";
import { openModel, resolveWithProgress } from "./load.ts";
import { progress } from "./progress.ts";
import { taskPrompts, type TaskPrompts } from "./task_setup.ts";

export interface EvalResult extends ClassificationReport {
  model: string;
  task: string;
  seed: number;
  seconds: number;
  inputsPerSec: number;
  calibration?: { method: "staicc" | "zhao"; report: ClassificationReport; pcf?: number[] };
  templateConsistency?: { queries: number; templates: number; consistency: number; accuracy: number };
  demonstrationConsistency?: { queries: number; sets: number; consistency: number; accuracy: number };
  unseenLabel?: ClassificationReport;
}

/** StaICC-Diag's template and demonstration consistency, and the unseen-label protocol. */
async function analyses(
  model: LanguageModel, tp: TaskPrompts, which: Set<string>, seed: number, microBatch: number, result: EvalResult, queries?: number,
): Promise<void> {
  if (!tp.builder || !tp.data || !tp.split) throw new AbftError("--consistency and --unseen-label need the task's data, not imported prompts", "BAD_ARGS");
  const nClasses = tp.task.labelWords.length;
  const run = async (label: string, prompts: IclPrompt[]) => {
    const bar = progress(label, prompts.length, "inputs");
    const p = await predict(model, prompts, { microBatch, onProgress: (d) => bar.update(d) });
    bar.stop();
    return p.predicted;
  };
  if (which.has("template")) {
    const { prompts, templates } = buildTemplateConsistencyPrompts(tp.builder, tp.data, tp.split, { k: tp.k, seed, queries });
    const pred = await run("template consistency", prompts);
    result.templateConsistency = {
      queries: prompts.length / templates.length, templates: templates.length,
      consistency: templateConsistency(pred, templates.length),
      accuracy: classificationReport(pred, prompts.map((p) => p.label), nClasses).accuracy,
    };
  }
  if (which.has("demonstrations")) {
    const sets = 8;
    const prompts = tp.builder.buildAll(tp.data, sampleDemoConsistency(tp.split, { k: tp.k, seed, sets, queries }));
    const pred = await run("demonstration consistency", prompts);
    result.demonstrationConsistency = {
      queries: prompts.length / sets, sets, consistency: demonstrationConsistency(pred, sets),
      accuracy: classificationReport(pred, prompts.map((p) => p.label), nClasses).accuracy,
    };
  }
  if (which.has("unseen-label")) {
    const prompts = tp.builder.buildAll(tp.data, sampleUnseenLabelPrompts(tp.data, tp.split, { k: tp.k, seed, queries: queries === undefined ? undefined : tp.split.testQueries.slice(0, queries) }));
    const pred = await run("unseen label", prompts);
    result.unseenLabel = classificationReport(pred, prompts.map((p) => p.label), nClasses, tp.task.labelWords);
  }
}

/** Accuracy (and friends) of `model` on `prompts`, with a progress bar. */
export async function evaluatePrompts(
  model: LanguageModel,
  prompts: IclPrompt[],
  label: string,
  microBatch: number,
  labelNames?: readonly string[],
): Promise<{ report: ClassificationReport; probs: number[][]; seconds: number }> {
  const bar = progress(label, prompts.length, "inputs");
  const t0 = performance.now();
  const p = await predict(model, prompts, { microBatch, onProgress: (d) => bar.update(d) });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const nClasses = prompts[0].label_token_ids.length;
  return { report: classificationReport(p.predicted, prompts.map((x) => x.label), nClasses, labelNames), probs: p.labelProbs, seconds };
}

export async function calibrate(
  model: LanguageModel,
  tp: TaskPrompts,
  probs: number[][],
  method: "staicc" | "zhao",
  seed: number,
  microBatch: number,
  nCalibration = 512,
): Promise<{ report: ClassificationReport; pcf?: number[] }> {
  if (!tp.builder || !tp.data || !tp.split) throw new Error("calibration needs the task's data (not imported prompts)");
  const gold = tp.test.map((p) => p.label);
  const nClasses = tp.test[0].label_token_ids.length;
  if (method === "staicc") {
    const specs = sampleCalibrationPrompts(tp.split, { n: nCalibration, k: tp.k, seed });
    const cf = tp.builder.buildAll(tp.data, specs);
    const bar = progress("calibration (content-free prompts)", cf.length, "inputs");
    const res = await predict(model, cf, { microBatch, onProgress: (d) => bar.update(d) });
    bar.stop();
    const pcf = meanDistribution(res.labelProbs);
    return { report: classificationReport(calibratedPredictions(probs, pcf), gold, nClasses, tp.task.labelWords), pcf: Array.from(pcf) };
  }
  const perTest = tp.testSpecs.map((spec) => tp.builder!.contentFreePrompts(tp.data!, spec));
  const flat = perTest.flat();
  const bar = progress("calibration (content-free inputs)", flat.length, "inputs");
  const p = await predict(model, flat, { microBatch, onProgress: (d) => bar.update(d) });
  bar.stop();
  const per = perTest[0].length;
  const pcfs = tp.test.map((_, i) => zhaoContentFree(p.labelLogits.slice(i * per, (i + 1) * per)));
  return { report: classificationReport(calibratedPredictions(probs, pcfs), gold, nClasses, tp.task.labelWords) };
}

export function formatReport(r: ClassificationReport, labels: readonly string[]): string {
  const pc = r.perClassAccuracy.map((a, i) => `${labels[i]} ${a === null ? "-" : (100 * a).toFixed(1)}`).join(", ");
  return `accuracy ${(100 * r.accuracy).toFixed(2)}%  macro-F1 ${(100 * r.macroF1).toFixed(2)}%  (${r.n} inputs; per class: ${pc})`;
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("in-context accuracy, macro-F1 and per-class accuracy on a task's test inputs")
    .requiredOption("--model <dir|repo|run>", "model folder, hub repo id, or abft run directory")
    .requiredOption("--task <names>", "sst2, mr, fp, sst5, trec, subj, tee, teh, or a task spec file; several, comma-separated, for out-of-domain evaluation")
    .option("--data <path>", "folder with the task's files, one JSONL/CSV/TSV/Parquet file, or hf://datasets/... (default for built-in tasks: the hub); a folder serves every task")
    .option("--seed <n>", "seed of the split and the prompts", intOption("--seed"), 0)
    .option("--consistency [which]", "StaICC-Diag consistency: template (9 templates x 100 queries), demonstrations (8 sets x 128 queries), or both")
    .option("--unseen-label", "also evaluate with demonstrations that all carry labels other than the query's")
    .option("--analysis-queries <n>", "queries for --consistency/--unseen-label (default: StaICC-Diag's 100 and 128; all test queries)", intOption("--analysis-queries", 1))
    .option("--test-queries <n>", "test queries (each with 2 demonstration sets)", intOption("--test-queries", 1))
    .option("--k <n>", "demonstrations per prompt", intOption("--k", 1))
    .option("--test-prompts <file>", "evaluate exactly these prompts (JSONL from `abft prompts`)")
    .option("--calibrate [method]", "also report contextual calibration: staicc (default) or zhao")
    .option("--calibration-prompts <n>", "content-free prompts for StaICC's p_cf", intOption("--calibration-prompts", 1), 512)
    .option("--micro-batch <n>", "prompts per forward pass", intOption("--micro-batch", 1), 16)
    .option("--out <file>", "write the result JSON here (default eval-results/<model>-<task>-seed<seed>.json)")
    .option("--json", "print the result JSON instead of a summary")
    .action(async (o) => {
      const tasks = String(o.task).split(",").map((t) => t.trim()).filter(Boolean);
      if (tasks.length > 1 && (o.testPrompts || o.out)) throw new AbftError("--test-prompts and --out take one task; give --task a single name", "BAD_ARGS");
      const which = new Set<string>(o.consistency ? (o.consistency === true ? ["template", "demonstrations"] : String(o.consistency).split(",")) : []);
      for (const w of which) if (w !== "template" && w !== "demonstrations") throw new AbftError(`--consistency: unknown '${w}' (template, demonstrations)`, "BAD_ARGS");
      if (o.unseenLabel) which.add("unseen-label");
      if (tasks.length > 1 && o.data && existsSync(o.data) && !statSync(o.data).isDirectory()) {
        throw new AbftError(`--data ${o.data} is one file; with several tasks give a folder holding every task's files (or no --data: the hub)`, "BAD_ARGS");
      }
      const src = await resolveWithProgress(o.model);
      const model = await openModel(src);
      const results: EvalResult[] = [];
      for (const task of tasks) {
        const tp = await taskPrompts(src, { task, data: o.data, seed: o.seed, k: o.k, testQueries: o.testQueries, testPrompts: o.testPrompts }, { train: false, test: true });
        const ev = await evaluatePrompts(model, tp.test, `eval ${tp.task.name}`, o.microBatch, tp.task.labelWords);
        const result: EvalResult = {
          model: o.model, task: tp.task.name, seed: o.seed, ...ev.report,
          seconds: ev.seconds, inputsPerSec: tp.test.length / ev.seconds,
        };
        if (o.calibrate) {
          const method = o.calibrate === true ? "staicc" : o.calibrate;
          if (method !== "staicc" && method !== "zhao") throw new AbftError(`--calibrate: unknown method '${method}' (staicc or zhao)`, "BAD_ARGS");
          result.calibration = { method, ...(await calibrate(model, tp, ev.probs, method, o.seed, o.microBatch, o.calibrationPrompts)) };
        }
        if (which.size) await analyses(model, tp, which, o.seed, o.microBatch, result, o.analysisQueries);
        const out = o.out ?? `eval-results/${String(o.model).replace(/\/+$/, "").replace(/^.*\//, "")}-${tp.task.name}-seed${o.seed}.json`;
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
        results.push(result);
        if (!o.json) {
          console.log(`${tp.task.name}: ${formatReport(ev.report, tp.task.labelWords)}`);
          if (result.calibration) console.log(`  calibrated (${result.calibration.method}): ${formatReport(result.calibration.report, tp.task.labelWords)}`);
          if (result.templateConsistency) console.log(`  template consistency ${(100 * result.templateConsistency.consistency).toFixed(2)}% (${result.templateConsistency.queries} queries x 9 templates)`);
          if (result.demonstrationConsistency) console.log(`  demonstration consistency ${(100 * result.demonstrationConsistency.consistency).toFixed(2)}% (${result.demonstrationConsistency.queries} queries x 8 sets)`);
          if (result.unseenLabel) console.log(`  unseen label: ${formatReport(result.unseenLabel, tp.task.labelWords)}`);
          console.log(`  ${result.inputsPerSec.toFixed(1)} inputs/s; written to ${out}`);
        }
      }
      if (o.json) console.log(JSON.stringify(results.length === 1 ? results[0] : results));
      else if (results.length > 1) {
        const mean = results.reduce((a, r) => a + r.accuracy, 0) / results.length;
        console.log(`mean accuracy over ${results.length} tasks: ${(100 * mean).toFixed(2)}%`);
      }
      model.dispose();
    });
}
