// The figures of one training run (figures.ts has the shared pieces): induction heads over
// training (Fig. 5, several runs as lines), label attention per layer before and after training
// (Fig. 4), and the shift ||θ' − θ||_F of the trained W_Q and W_K per layer (Appendix B).
import type { LegendEntry } from "./axes.ts";
import { axesIn, categoryTicks, finish, margins, PlotInputError, requireFinite, titleOf, toCsv, yLabelOffset, zeroBasedY, type FigureOptions, type FigureOutput } from "./figures.ts";
import { decimalsFor, formatNumber, niceTicks, padDomain } from "./scales.ts";
import { COLUMN_WIDTH, Figure, MARKERS, PALETTE } from "./svg.ts";

// ---------------------------------------------------------------------------------------------
// heads (Fig. 5)

export interface HeadsRun {
  label: string;
  steps: number[];
  /** mean number of heads (all layers) passing the induction-head filter, per step */
  inductionHeads: number[];
  /** prompts per step (the pseudo-batch), for an x axis of training samples seen */
  samplesPerStep?: number;
}

export interface HeadsOptions extends FigureOptions {
  /** x axis: training steps (default) or training samples seen (step x samplesPerStep, as the paper) */
  x?: "step" | "samples";
}

export function headsFigure(runs: readonly HeadsRun[], opts: HeadsOptions = {}): FigureOutput {
  if (!runs.length) throw new PlotInputError("heads: no runs to plot");
  for (const r of runs) {
    if (!r.steps.length) throw new PlotInputError(`heads: run ${r.label} has no steps`);
    if (r.steps.length !== r.inductionHeads.length) throw new PlotInputError(`heads: run ${r.label} has ${r.steps.length} steps but ${r.inductionHeads.length} head counts`);
    requireFinite(`heads: ${r.label} steps`, r.steps);
    requireFinite(`heads: ${r.label} induction heads`, r.inductionHeads);
  }
  const bySamples = opts.x === "samples";
  if (bySamples) {
    const r = runs.find((q) => !(q.samplesPerStep! > 0));
    if (r) throw new PlotInputError(`heads: run ${r.label} does not say how many samples a step takes (its config.json has no train.batch)`, "plot against steps instead");
  }
  const xOf = (r: HeadsRun) => (bySamples ? r.steps.map((s) => s * r.samplesPerStep!) : r.steps);
  const title = titleOf(opts, "Induction heads during training");
  const allSteps = runs.flatMap(xOf);
  let [s0, s1] = [Math.min(...allSteps), Math.max(...allSteps)];
  if (s0 >= 0 && s0 <= 0.1 * s1) s0 = 0; // start the axis at 0 when the first step is close to it
  const xd = s1 > s0 ? ([s0, s1] as [number, number]) : padDomain(s0, s1);
  const y = zeroBasedY(Math.max(...runs.flatMap((r) => r.inductionHeads)));
  const yLabels = y.ticks.map((v) => formatNumber(v, decimalsFor(y.ticks)));
  const fig = new Figure(COLUMN_WIDTH, 180);
  const ax = axesIn(fig, margins(title, yLabels, {}));
  ax.setX(xd[0], xd[1]).setY(0, y.d1);
  ax.grid(y.ticks);
  const entries: LegendEntry[] = [];
  runs.forEach((r, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = i >= PALETTE.length ? [3, 1.5] : undefined;
    const marker = r.steps.length <= 24 ? MARKERS[i % MARKERS.length] : undefined;
    ax.line(xOf(r), r.inductionHeads, { color, dash, marker, width: 1 });
    entries.push({ label: r.label, color, dash, marker });
  });
  ax.frame();
  ax.xTicks(niceTicks(xd[0], xd[1], 5).filter((v) => Number.isInteger(v) || xd[1] - xd[0] < 5));
  ax.yTicks(y.ticks);
  ax.xLabel(bySamples ? "training samples seen" : "training step");
  ax.yLabel("induction heads", yLabelOffset(yLabels));
  if (title) ax.title(title);
  if (runs.length > 1) ax.legend(entries);
  const csv = toCsv(
    ["run", "step", "samples", "induction_heads"],
    runs.flatMap((r) => r.steps.map((s, i) => [r.label, s, r.samplesPerStep ? s * r.samplesPerStep : null, r.inductionHeads[i]])),
  );
  return finish(fig, opts, csv, {
    figure: "heads",
    title,
    x: bySamples ? "samples" : "step",
    runs: runs.map((r) => ({ label: r.label, samplesPerStep: r.samplesPerStep ?? null, steps: r.steps, inductionHeads: r.inductionHeads })),
  });
}

// ---------------------------------------------------------------------------------------------
// layers (Fig. 4)

export interface LayerAttention {
  /** mean over prompts and heads of the last token's attention on all label tokens */
  induction: number[];
  /** the same on the correct labels' tokens */
  correct: number[];
}

export interface LayersData {
  layers: number[];
  /** either may be absent (a run without the evaluation before training), not both */
  before?: LayerAttention;
  after?: LayerAttention;
}

export function layersFigure(d: LayersData, opts: FigureOptions = {}): FigureOutput {
  const n = d.layers.length;
  if (!n) throw new PlotInputError("layers: no layers to plot");
  if (!d.before && !d.after) throw new PlotInputError("layers: neither before nor after statistics to plot");
  for (const [name, s] of [["before", d.before], ["after", d.after]] as const) {
    if (!s) continue;
    if (s.induction.length !== n || s.correct.length !== n) throw new PlotInputError(`layers: ${name} has ${s.induction.length}/${s.correct.length} values for ${n} layers`);
    requireFinite(`layers: ${name} induction attention`, s.induction);
    requireFinite(`layers: ${name} correct attention`, s.correct);
  }
  const title = titleOf(opts, "Label attention of the last token per layer");
  const all = [d.before, d.after].flatMap((x) => (x ? [...x.induction, ...x.correct] : []));
  const y = zeroBasedY(Math.max(...all));
  const yLabels = y.ticks.map((v) => formatNumber(v, decimalsFor(y.ticks)));
  const fig = new Figure(COLUMN_WIDTH, 180);
  const ax = axesIn(fig, margins(title, yLabels, {}));
  const [x0, x1] = [Math.min(...d.layers), Math.max(...d.layers)];
  ax.setX(x0 - 0.5, x1 + 0.5).setY(0, y.d1);
  ax.grid(y.ticks);
  const entries: LegendEntry[] = [];
  const series: [string, keyof LayerAttention, string][] = [["induction", "induction", PALETTE[0]], ["correct label", "correct", PALETTE[1]]];
  const marker = n <= 40 ? "circle" : undefined;
  for (const [label, key, color] of series) {
    if (d.before) {
      ax.line(d.layers, d.before[key], { color, dash: [2.5, 1.5], width: 0.9, marker: marker ? "square" : undefined, markerSize: 1.3 });
      entries.push({ label: `${label}, before`, color, dash: [2.5, 1.5], marker: marker ? "square" : undefined });
    }
    if (d.after) {
      ax.line(d.layers, d.after[key], { color, width: 1.1, marker, markerSize: 1.6 });
      entries.push({ label: `${label}, after`, color, marker });
    }
  }
  ax.frame();
  const xt = categoryTicks(x1 - x0 + 1, 12).map((i) => i + x0);
  ax.xTicks(xt);
  ax.yTicks(y.ticks);
  ax.xLabel("layer");
  ax.yLabel("attention on label tokens", yLabelOffset(yLabels));
  if (title) ax.title(title);
  ax.legend(entries);
  const csv = toCsv(
    ["layer", "induction_before", "correct_before", "induction_after", "correct_after"],
    d.layers.map((l, i) => [l, d.before?.induction[i], d.before?.correct[i], d.after?.induction[i], d.after?.correct[i]]),
  );
  return finish(fig, opts, csv, { figure: "layers", title, layers: d.layers, before: d.before ?? null, after: d.after ?? null });
}

// ---------------------------------------------------------------------------------------------
// shift (Appendix B)

export interface ShiftData {
  layers: number[];
  /** ||ΔW_Q||_F and ||ΔW_K||_F per layer */
  q: number[];
  k: number[];
}

export function shiftFigure(d: ShiftData, opts: FigureOptions = {}): FigureOutput {
  const n = d.layers.length;
  if (!n) throw new PlotInputError("shift: no layers to plot");
  if (d.q.length !== n || d.k.length !== n) throw new PlotInputError(`shift: ${d.q.length} W_Q and ${d.k.length} W_K values for ${n} layers`);
  requireFinite("shift: W_Q", d.q);
  requireFinite("shift: W_K", d.k);
  const title = titleOf(opts, "Shift of the trained weights per layer");
  const y = zeroBasedY(Math.max(...d.q, ...d.k));
  const yLabels = y.ticks.map((v) => formatNumber(v, decimalsFor(y.ticks)));
  const fig = new Figure(COLUMN_WIDTH, 180);
  const ax = axesIn(fig, margins(title, yLabels, {}));
  ax.setX(-0.5, n - 0.5).setY(0, y.d1);
  ax.grid(y.ticks);
  ax.bars([
    { values: d.q, color: PALETTE[0] },
    { values: d.k, color: PALETTE[1] },
  ]);
  ax.frame();
  const xt = categoryTicks(n, 12);
  ax.xTicks(xt, xt.map((i) => String(d.layers[i])));
  ax.yTicks(y.ticks);
  ax.xLabel("layer");
  ax.yLabel("‖θ′ − θ‖_F", yLabelOffset(yLabels));
  if (title) ax.title(title);
  ax.legend([
    { label: "W_Q", color: PALETTE[0], patch: true },
    { label: "W_K", color: PALETTE[1], patch: true },
  ]);
  const csv = toCsv(["layer", "q", "k"], d.layers.map((l, i) => [l, d.q[i], d.k[i]]));
  return finish(fig, opts, csv, { figure: "shift", title, layers: d.layers, q: d.q, k: d.k });
}
