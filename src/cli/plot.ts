// `abft plot <kind> ...`: the paper's figures as PNG, plus SVG and the data as CSV and JSON beside
// each (FILE.png, FILE.svg, FILE.data.csv, FILE.data.json), from run directories, sweep results,
// interpolation grids or one prompt's attention.
//   abft plot heads RUN_DIR... [--labels a,b] [--x samples]   induction heads over training (Fig. 5)
//   abft plot layers RUN_DIR                                   label attention per layer (Fig. 4)
//   abft plot shift RUN_DIR                                    ||θ' − θ||_F of W_Q, W_K (App. B)
//   abft plot sensitivity RESULTS.csv                          accuracy over A0 x B0, PID (Fig. 6)
//   abft plot data-efficiency RESULTS.csv                      accuracy vs training size (Fig. 15)
//   abft plot contour GRID.json|GRID.csv                       interpolation plane (Fig. 7)
//   abft plot attention --json FILE [--layer L]                one prompt's attention (Fig. 16)
// Every kind takes --out FILE.png (default: <kind>.png in the run directory, or beside the input
// file), --title and --scale (pixels per point). The written paths are printed, one per line.
import { InvalidArgumentError, type Command } from "commander";
import { dirname, join } from "node:path";
import { PlotInputError, type FigureOptions, type FigureOutput } from "../analysis/figures.ts";
import { contourFigure, dataEfficiencyFigure, sensitivityFigure } from "../analysis/figures_accuracy.ts";
import { attentionFigure } from "../analysis/figures_attention.ts";
import { headsFigure, layersFigure, shiftFigure } from "../analysis/figures_training.ts";
import {
  readAttentionJson,
  readContourGrid,
  readDataEfficiencyCsv,
  readHeadsRun,
  readLayers,
  readSensitivityCsv,
  readShift,
  runInputs,
  writeFigure,
} from "../analysis/run_figures.ts";

interface CommonOptions {
  out?: string;
  title?: string;
  scale: number;
}

function scaleOption(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 16) throw new InvalidArgumentError(`--scale must be a number in (0, 16], got '${v}'`);
  return n;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option("--out <file.png>", "where to write the PNG; FILE.svg, FILE.data.csv and FILE.data.json go beside it")
    .option("--title <text>", "the figure's title (\"\" for none)")
    .option("--scale <px-per-pt>", "PNG pixels per point (4 = 288 dpi; a paper column is 245 pt)", scaleOption, 4);
}

function figOpts(o: CommonOptions): FigureOptions {
  return { title: o.title, scale: o.scale };
}

function emit(out: string, fig: FigureOutput, inputs: string[] = []): void {
  for (const p of writeFigure(out, fig, inputs)) console.log(p);
}

export function registerPlot(program: Command): void {
  const plot = program
    .command("plot")
    .description("draw a paper figure as PNG (with SVG, and the data as CSV/JSON) from runs, sweeps or grids");

  withCommon(
    plot
      .command("heads <run-dirs...>")
      .description("induction heads per step over training, one line per run (paper Fig. 5)")
      .option("--labels <a,b,...>", "legend names of the runs, in order (default: the directory names)")
      .option("--x <step|samples>", "x axis: training steps, or training samples seen (step x batch)", "step"),
  ).action((dirs: string[], o: CommonOptions & { labels?: string; x: string }) => {
    if (o.x !== "step" && o.x !== "samples") throw new PlotInputError(`--x must be step or samples, got '${o.x}'`);
    const labels = o.labels === undefined ? [] : o.labels.split(",").map((s) => s.trim());
    if (o.labels !== undefined && labels.length !== dirs.length) {
      throw new PlotInputError(`--labels names ${labels.length} runs but ${dirs.length} run directories were given`);
    }
    const runs = dirs.map((d, i) => readHeadsRun(d, labels[i]));
    emit(o.out ?? (dirs.length === 1 ? join(dirs[0], "heads.png") : "heads.png"), headsFigure(runs, { ...figOpts(o), x: o.x }), dirs.flatMap(runInputs));
  });

  withCommon(plot.command("layers <run-dir>").description("per-layer induction and correct-label attention, before vs after training (Fig. 4)")).action(
    (dir: string, o: CommonOptions) => emit(o.out ?? join(dir, "layers.png"), layersFigure(readLayers(dir), figOpts(o)), runInputs(dir)),
  );

  withCommon(plot.command("shift <run-dir>").description("||θ' − θ||_F per layer for W_Q and W_K (Appendix B)")).action((dir: string, o: CommonOptions) =>
    emit(o.out ?? join(dir, "shift.png"), shiftFigure(readShift(dir), figOpts(o)), runInputs(dir)),
  );

  withCommon(plot.command("sensitivity <results.csv>").description("accuracy over A0 x B0 with and without PID, mean over seeds (Fig. 6)")).action(
    (csv: string, o: CommonOptions) => emit(o.out ?? join(dirname(csv), "sensitivity.png"), sensitivityFigure(readSensitivityCsv(csv), figOpts(o)), [csv]),
  );

  withCommon(plot.command("data-efficiency <results.csv>").description("accuracy against training-set size, ABFT vs E2E (Fig. 15)")).action(
    (csv: string, o: CommonOptions) => emit(o.out ?? join(dirname(csv), "data-efficiency.png"), dataEfficiencyFigure(readDataEfficiencyCsv(csv), figOpts(o)), [csv]),
  );

  withCommon(plot.command("contour <grid>").description("accuracy over the interpolation plane (a_E, a_A) as filled contours (Fig. 7)")).action(
    (grid: string, o: CommonOptions) => emit(o.out ?? join(dirname(grid), "contour.png"), contourFigure(readContourGrid(grid), figOpts(o)), [grid]),
  );

  withCommon(
    plot
      .command("attention")
      .description("one prompt, one layer: the last token's attention of every head over the tokens (Fig. 16)")
      .requiredOption("--json <file>", "JSON with tokens, attention [heads][tokens], label_positions, correct_positions, layer")
      .option("--layer <l>", "for `abft inspect --json` output (attention_last_row [layers][heads][tokens]): the layer to draw", (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--layer must be an integer >= 0, got '${v}'`);
        return n;
      }),
  ).action((o: CommonOptions & { json: string; layer?: number }) => {
    const data = readAttentionJson(o.json, o.layer);
    emit(o.out ?? join(dirname(o.json), `attention-layer${data.layer}.png`), attentionFigure(data, figOpts(o)), [o.json]);
  });
}
