// `abft interpolate`: Eq. 2 of the paper. Accuracy of θ = θ0 + a_E (θ_E − θ0) + a_A (θ_A − θ0) over a
// grid of (a_E, a_A), extrapolation (a > 1, a < 0) included, where θ are the trained tensors (W_Q,
// W_K) of an E2E run and an ABFT run of the same base model; `--line` evaluates θ0 + a (θ_A − θ0)
// alone. Writes a CSV and a JSON of accuracies, and a contour (or line) PNG.
import type { Command } from "commander";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainedName } from "../abft/run_dir.ts";
import { addLoraUpdate, loraScale } from "../abft/export.ts";
import { contourFigure } from "../analysis/figures_accuracy.ts";
import { writeFigure } from "../analysis/run_figures.ts";
import { AbftError } from "../gpu/errors.ts";
import { Checkpoint } from "../io/safetensors.ts";
import { predict } from "../eval/evaluate.ts";
import { accuracy } from "../eval/metrics.ts";
import { intOption, openModel, resolveWithProgress } from "./load.ts";
import { progress, say } from "./progress.ts";
import { taskPrompts } from "./task_setup.ts";

/** "-0.5:2:0.25" → [-0.5, -0.25, ..., 2] (inclusive, robust to rounding) */
export function parseGrid(spec: string): number[] {
  const parts = spec.split(":").map(Number);
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x)) || parts[2] <= 0 || parts[1] < parts[0]) {
    throw new AbftError(`--grid '${spec}': expected start:stop:step with step > 0 and stop >= start, e.g. -0.5:2:0.25`, "BAD_ARGS");
  }
  const [a, b, step] = parts;
  const n = Math.floor((b - a) / step + 1e-9) + 1;
  return Array.from({ length: n }, (_, i) => Math.round((a + i * step) * 1e9) / 1e9);
}

export interface InterpolationPoint {
  aE: number;
  aA: number;
  accuracy: number;
}

export function registerInterpolate(program: Command): void {
  program
    .command("interpolate")
    .description("accuracy over θ0 + a_E(θ_E − θ0) + a_A(θ_A − θ0) (paper Eq. 2): CSV, JSON and a contour PNG")
    .requiredOption("--abft <run>", "run directory of an ABFT run")
    .option("--e2e <run>", "run directory of an E2E run of the same base model (not needed with --line)")
    .option("--base <model>", "the base model (default: the ABFT run's)")
    .requiredOption("--task <name|spec.json>", "the task to evaluate on")
    .option("--data <path>", "task data (folder, file or hf://...)")
    .option("--grid <start:stop:step>", "values of a_E and a_A", "-0.5:2:0.25")
    .option("--line", "only θ0 + a(θ_A − θ0) over the grid")
    .option("--seed <n>", "seed of the test prompts", intOption("--seed"), 0)
    .option("--test-queries <n>", "test queries (each with 2 demonstration sets)", intOption("--test-queries", 1))
    .option("--micro-batch <n>", "prompts per forward pass", intOption("--micro-batch", 1), 16)
    .option("--out <dir>", "where to write interpolation.{csv,json,png}", "interpolation")
    .action(async (o) => {
      if (!o.line && !o.e2e) throw new AbftError("give --e2e RUN (or --line for the ABFT direction alone)", "BAD_ARGS");
      const grid = parseGrid(o.grid);
      const runA = await resolveWithProgress(o.abft);
      const src = await resolveWithProgress(o.base ?? runA.dir);
      if (src.trainedFile) throw new AbftError("--base must be a model, not a run directory", "BAD_ARGS");
      const tp = await taskPrompts(src, { task: o.task, data: o.data, seed: o.seed, testQueries: o.testQueries }, { train: false, test: true });
      const model = await openModel(src);
      const rt = model.headWeight().rt;
      const runE = o.line ? null : await resolveWithProgress(o.e2e);
      // the trained matrices of either run (a LoRA run's update is (alpha/r)·B·A on W_Q/W_K)
      const namesOf = (file: string) => {
        const ck = Checkpoint.open(file);
        const n = ck.names();
        ck.close();
        return n;
      };
      const allNames = [runA.trainedFile!, ...(runE ? [runE.trainedFile!] : [])].flatMap(namesOf);
      const params = model.qkParams(allNames.some((n) => n.endsWith("_bias")));
      const base = await Promise.all(params.map((p) => p.tensor.toF32()));
      /** the direction θ − θ0 of each parameter (zero where the run did not train it) */
      const load = (file: string) => {
        const ck = Checkpoint.open(file);
        const scale = loraScale(ck);
        const lora = scale !== 0;
        const out = params.map((p, i) => {
          const d = new Float32Array(base[i].length);
          if (lora && (p.kind === "q" || p.kind === "k")) return addLoraUpdate(d, ck, p.layer, p.kind, scale);
          const name = trainedName(p);
          if (!ck.has(name)) {
            if (p.kind === "q" || p.kind === "k") throw new AbftError(`${file} has no ${name}: not trained from the same base model`, "BAD_RUN_DIR");
            return d; // a bias the other run trained
          }
          const t = ck.getF32(name);
          if (t.length !== base[i].length) throw new AbftError(`${file}: ${name} does not match the base model's shape`, "BAD_RUN_DIR");
          for (let j = 0; j < d.length; j++) d[j] = t[j] - base[i][j];
          return d;
        });
        ck.close();
        return out;
      };
      const dA = load(runA.trainedFile!);
      const dE = runE ? load(runE.trainedFile!) : null;
      const points: { aE: number; aA: number }[] = o.line ? grid.map((a) => ({ aE: 0, aA: a })) : grid.flatMap((aE) => grid.map((aA) => ({ aE, aA })));
      const gold = tp.test.map((p) => p.label);
      const results: InterpolationPoint[] = [];
      const bar = progress("interpolate", points.length, "points");
      for (const [i, pt] of points.entries()) {
        params.forEach((p, j) => {
          const w = new Float32Array(base[j].length);
          for (let x = 0; x < w.length; x++) w[x] = base[j][x] + pt.aA * dA[j][x] + (dE ? pt.aE * dE[j][x] : 0);
          rt.write(p.tensor.buf, w);
        });
        const pred = await predict(model, tp.test, { microBatch: o.microBatch });
        results.push({ ...pt, accuracy: accuracy(pred.predicted, gold) });
        bar.update(i + 1, `a_E ${pt.aE} a_A ${pt.aA}: ${(100 * results[i].accuracy).toFixed(2)}%`);
      }
      bar.stop();
      mkdirSync(o.out, { recursive: true });
      const csv = ["a_E,a_A,accuracy", ...results.map((r) => `${r.aE},${r.aA},${r.accuracy}`)].join("\n") + "\n";
      writeFileSync(join(o.out, "interpolation.csv"), csv);
      const meta = { base: o.base ?? runA.spec, abft: o.abft, e2e: o.e2e ?? null, task: tp.task.name, grid, line: !!o.line };
      writeFileSync(join(o.out, "interpolation.json"), JSON.stringify({ ...meta, points: results }, null, 2) + "\n");
      const written = drawInterpolation(o.out, results, !!o.line, meta.task);
      say(`abft: wrote ${join(o.out, "interpolation.csv")}, interpolation.json${written ? `, ${written}` : ""}`);
      for (const r of results) if (r.aE === 0 && (r.aA === 0 || r.aA === 1)) console.log(`a_E ${r.aE} a_A ${r.aA}: accuracy ${(100 * r.accuracy).toFixed(2)}%`);
      model.dispose();
    });
}

/** The contour figure of a grid (paper Fig. 7); none for --line (its CSV/JSON say it all). */
function drawInterpolation(dir: string, points: InterpolationPoint[], line: boolean, task: string): string | null {
  if (line) return null;
  const aE = [...new Set(points.map((p) => p.aE))].sort((x, y) => x - y);
  const aA = [...new Set(points.map((p) => p.aA))].sort((x, y) => x - y);
  if (aE.length < 2 || aA.length < 2) return null;
  const acc = aA.map((a) => aE.map((e) => points.find((p) => p.aE === e && p.aA === a)?.accuracy ?? NaN));
  const fig = contourFigure({ aE, aA, accuracy: acc }, { title: `Interpolation, ${task}` });
  writeFigure(join(dir, "interpolation.png"), fig, [join(dir, "interpolation.json"), join(dir, "interpolation.csv")]);
  return "interpolation.png";
}
