// The paper's figures, one function per kind, from plain data (run_figures.ts reads run
// directories and sweep results into these inputs). Each returns the PNG, the same figure as SVG,
// and the data behind it as CSV and JSON (`json.figure` names the kind).
//
//   heads            induction heads per step over training, one line per run      (paper Fig. 5)
//   layers           per-layer induction and correct-label attention, before/after  (Fig. 4)
//   attention        one prompt, one layer: last token's attention, heads x tokens  (Fig. 16)
//   shift            ||θ' − θ||_F per layer for W_Q and W_K                          (Appendix B)
//   sensitivity      accuracy over A0 x B0, without and with PID (mean over seeds)  (Fig. 6)
//   data-efficiency  accuracy against training-set size, ABFT vs E2E               (Fig. 15)
//   contour          accuracy over the interpolation plane (a_E, a_A)              (Fig. 7)
//
// Accuracies given as fractions (all ≤ 1) are drawn as percentages; the CSV and JSON keep the
// numbers as given. Widths are in points; a paper column is 245 pt (3.4 in), and the PNG has
// `scale` pixels per point (default 4, i.e. 288 dpi).
import { AbftError } from "../gpu/errors.ts";
import { measureText } from "./font.ts";
import { Path } from "./path.ts";
import type { Rgb } from "./raster.ts";
import {
  Axes,
  COLUMN_WIDTH,
  colorBar,
  decimalsFor,
  Figure,
  FONT,
  formatNumber,
  hexToRgb,
  inkOn,
  MARKERS,
  niceTicks,
  padDomain,
  PALETTE,
  viridis,
  viridisRgb,
  type LegendEntry,
} from "./svg.ts";

export interface FigureOutput {
  png: Buffer;
  svg: string;
  csv: string;
  json: Record<string, unknown>;
  /** PNG size in pixels */
  width: number;
  height: number;
}

export interface FigureOptions {
  /** replaces the default title; "" draws none */
  title?: string;
  /** pixels per point of the PNG (default 4) */
  scale?: number;
}

export class PlotInputError extends AbftError {
  constructor(message: string, hint?: string) {
    super(message, "BAD_PLOT_INPUT", hint);
  }
}

// ---------------------------------------------------------------------------------------------
// shared pieces

const TICK_H = 2.5 + 1.5 + 0.73 * FONT.tick; // tick, gap, capital height of the tick labels
const LABEL_H = 0.95 * FONT.label;

/** One RFC 4180 CSV text from a header and rows. */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | boolean | null | undefined)[])[]): string {
  const cell = (v: string | number | boolean | null | undefined) => {
    const s = v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v)) ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(",")).join("\n") + "\n";
}

function finish(fig: Figure, opts: FigureOptions, csv: string, json: Record<string, unknown>): FigureOutput {
  const scale = opts.scale ?? 4;
  const [width, height] = fig.pixelSize(scale);
  return { png: fig.toPng(scale), svg: fig.toSvg(), csv, json, width, height };
}

function titleOf(opts: FigureOptions, fallback: string): string {
  return opts.title ?? fallback;
}

interface Margins {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Margins around one plot: room for the title, tick labels and axis labels. */
function margins(title: string, yTickLabels: readonly string[], opts: { xLabel?: boolean; yLabel?: boolean; right?: number; bottomExtra?: number }): Margins {
  return {
    left: 4 + (opts.yLabel === false ? 0 : LABEL_H + 3) + Axes.yTickWidth(yTickLabels) + 4 + 1,
    right: opts.right ?? 10,
    top: title ? FONT.title + 9 : 6,
    bottom: TICK_H + (opts.xLabel === false ? 0 : 4 + LABEL_H) + 4 + (opts.bottomExtra ?? 0),
  };
}

function axesIn(fig: Figure, m: Margins): Axes {
  return new Axes(fig, m.left, m.top, fig.width - m.left - m.right, fig.height - m.top - m.bottom);
}

function yLabelOffset(yTickLabels: readonly string[]): number {
  return Axes.yTickWidth(yTickLabels) + 4 + 3;
}

/** The scale factor that shows accuracies as percentages (100 when all are fractions). */
function percentFactor(values: readonly number[]): number {
  const v = values.filter(Number.isFinite);
  return v.length && v.every((x) => Math.abs(x) <= 1) ? 100 : 1;
}

function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

function requireFinite(what: string, xs: readonly number[]): void {
  const bad = xs.findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
  if (bad >= 0) {
    const v = xs[bad] as unknown;
    throw new PlotInputError(`${what}: value ${bad} is ${typeof v === "number" ? String(v) : JSON.stringify(v)}, not a finite number`);
  }
}

/** Ticks for a y range starting at zero. */
function zeroBasedY(maxValue: number): { d1: number; ticks: number[] } {
  const top = maxValue > 0 ? maxValue * 1.08 : 1;
  const ticks = niceTicks(0, top, 5);
  return { d1: Math.max(top, ticks[ticks.length - 1]), ticks };
}

/** Ticks over integer categories 0..n-1: every one, or every 2nd, 5th, ... so that at most `max` show. */
function categoryTicks(n: number, max: number): number[] {
  const step = [1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100].find((s) => n / s <= max) ?? Math.ceil(n / max);
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

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

// ---------------------------------------------------------------------------------------------
// attention (Fig. 16)

export interface AttentionData {
  /** the prompt's tokens as text */
  tokens: string[];
  /** [heads][tokens]: the last token's attention of every head of the layer */
  attention: number[][];
  /** positions of all label tokens, and of the correct labels' tokens */
  labelPositions: number[];
  correctPositions: number[];
  layer: number;
}

/** The text, cut with an ellipsis so that it is at most `max` points wide. */
export function fitText(t: string, size: number, max: number): string {
  if (measureText(t, size, true) <= max) return t;
  const chars = [...t];
  while (chars.length > 1 && measureText(chars.join("") + "…", size, true) > max) chars.pop();
  return chars.join("") + "…";
}

const correctBold = (_t: string) => true; // measure as bold: the correct labels are drawn bold

/** A token as it is drawn: whitespace made visible where it would vanish. */
export function displayToken(t: string): string {
  // byte-level BPE (GPT-2: Ġ space, Ċ newline) and SentencePiece (▁ space) markers, if raw
  const s = t.replace(/[Ġ▁]/g, " ").replace(/Ċ|\r?\n/g, "↵").replace(/\t/g, "→");
  return s.trim() === "" ? s.replace(/ /g, "␣") || "∅" : s;
}

// white to dark blue, for attention (most weights are near zero; zero prints as paper)
const BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"].map(hexToRgb);
export function blues(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (BLUES.length - 1);
  const i = Math.min(BLUES.length - 2, Math.floor(x));
  const f = x - i;
  const c = BLUES[i].map((a, k) => a + (BLUES[i + 1][k] - a) * f);
  return "#" + c.map((v) => Math.round(v * 255).toString(16).padStart(2, "0")).join("");
}

export function attentionFigure(d: AttentionData, opts: FigureOptions = {}): FigureOutput {
  const T = d.tokens.length;
  const NH = d.attention.length;
  if (!T) throw new PlotInputError("attention: no tokens");
  if (!NH) throw new PlotInputError("attention: no heads (attention is empty)");
  d.attention.forEach((row, h) => {
    if (row.length !== T) throw new PlotInputError(`attention: head ${h} has ${row.length} values for ${T} tokens`);
    requireFinite(`attention: head ${h}`, row);
  });
  for (const p of [...d.labelPositions, ...d.correctPositions]) {
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new PlotInputError(`attention: label position ${p} is outside the ${T} tokens`);
  }
  const title = titleOf(opts, `Last-token attention per head, layer ${d.layer}`);
  const tokenFont = FONT.tick - 0.5;
  const shown = d.tokens.map((t) => fitText(displayToken(t), tokenFont, 60));
  const cellW = 6.2;
  const cellH = NH <= 16 ? 7 : NH <= 32 ? 5 : 3.5;
  const longest = Math.max(...shown.map((t) => measureText(t, tokenFont, correctBold(t))));
  const headTicks = categoryTicks(NH, NH <= 16 ? 16 : 12);
  const yLabels = headTicks.map(String);
  const m = margins(title, yLabels, { right: 44, bottomExtra: 0 });
  m.bottom = 3.5 + longest + 4 + LABEL_H + 5;
  const plotW = Math.max(COLUMN_WIDTH - m.left - m.right, T * cellW);
  const fig = new Figure(m.left + plotW + m.right, m.top + NH * cellH + m.bottom);
  const ax = axesIn(fig, m);
  ax.setX(-0.5, T - 0.5).setY(NH - 0.5, -0.5);
  const vmax = Math.max(1e-12, ...d.attention.flat());
  ax.heatmap(d.attention.map((row) => row.map((v) => blues(v / vmax))));
  // label tokens: dotted lines on both sides of each run of label positions
  const labels = new Set(d.labelPositions);
  const correct = new Set(d.correctPositions);
  const p = new Path();
  for (const pos of [...labels].sort((a, b) => a - b)) {
    if (!labels.has(pos - 1)) p.moveTo(ax.x.map(pos - 0.5), ax.top).lineTo(ax.x.map(pos - 0.5), ax.bottom);
    if (!labels.has(pos + 1)) p.moveTo(ax.x.map(pos + 0.5), ax.top).lineTo(ax.x.map(pos + 0.5), ax.bottom);
  }
  fig.stroke(p, "#d62728", { width: 0.6, dash: [1, 1], round: false });
  ax.frame();
  // token labels, rotated, correct labels in red and bold
  const tick = new Path();
  shown.forEach((t, i) => {
    const x = ax.x.map(i);
    tick.moveTo(x, ax.bottom).lineTo(x, ax.bottom + 2);
    const color = correct.has(i) ? "#d62728" : labels.has(i) ? "#9a3412" : "#222222";
    fig.text(t, x, ax.bottom + 3.5, { size: tokenFont, anchor: "end", baseline: "middle", rotate: -90, color, bold: correct.has(i) });
  });
  fig.stroke(tick, "#222222", { width: 0.5, round: false });
  ax.yTicks(headTicks);
  ax.yLabel("head", yLabelOffset(yLabels));
  fig.text("token (dotted: label tokens; red: the correct label)", ax.left + ax.width / 2, ax.bottom + 3.5 + longest + 4, {
    size: FONT.label,
    anchor: "middle",
    baseline: "top",
  });
  if (title) ax.title(title);
  colorBar(fig, ax.right + 6, ax.top, 5, Math.max(30, ax.height), 0, vmax, (t) => blues(t), "attention");
  const csv = toCsv(
    ["position", "token", "is_label", "is_correct", ...d.attention.map((_, h) => `head_${h}`)],
    d.tokens.map((t, i) => [i, t, labels.has(i) ? 1 : 0, correct.has(i) ? 1 : 0, ...d.attention.map((row) => row[i])]),
  );
  return finish(fig, opts, csv, {
    figure: "attention",
    title,
    layer: d.layer,
    tokens: d.tokens,
    attention: d.attention,
    label_positions: d.labelPositions,
    correct_positions: d.correctPositions,
  });
}

// ---------------------------------------------------------------------------------------------
// sensitivity (Fig. 6)

export interface SensitivityRow {
  A: number;
  B: number;
  /** null: PID was not varied (one panel) */
  pid: boolean | null;
  accuracy: number;
}

export interface SensitivityCell {
  pid: boolean | null;
  A: number;
  B: number;
  mean: number;
  std: number;
  n: number;
}

export function sensitivityFigure(rows: readonly SensitivityRow[], opts: FigureOptions = {}): FigureOutput {
  if (!rows.length) throw new PlotInputError("sensitivity: no results to plot");
  requireFinite("sensitivity: accuracy", rows.map((r) => r.accuracy));
  const title = titleOf(opts, "Accuracy over the initial A and B");
  const As = [...new Set(rows.map((r) => r.A))].sort((a, b) => a - b);
  const Bs = [...new Set(rows.map((r) => r.B))].sort((a, b) => a - b);
  const pids = [...new Set(rows.map((r) => r.pid))].sort((a, b) => Number(a) - Number(b));
  const cells: SensitivityCell[] = [];
  for (const pid of pids)
    for (const B of Bs)
      for (const A of As) {
        const xs = rows.filter((r) => r.pid === pid && r.A === A && r.B === B).map((r) => r.accuracy);
        if (xs.length) cells.push({ pid, A, B, ...meanStd(xs) });
      }
  const pf = percentFactor(rows.map((r) => r.accuracy));
  const means = cells.map((c) => c.mean * pf);
  const [vmin, vmax] = [Math.min(...means), Math.max(...means)];
  const ad = decimalsFor(As);
  const bd = decimalsFor(Bs);
  const yLabels = Bs.map((b) => formatNumber(b, bd));
  const panelW = 78;
  const cellH = Math.min(18, panelW / As.length);
  const m = margins(title, yLabels, { right: 8 });
  const gap = 14;
  const barSpace = 40;
  const sub = pids.some((p) => p !== null) ? 10 : 0; // room for "with PID" / "without PID"
  const content = m.left + pids.length * panelW + (pids.length - 1) * gap + barSpace;
  const fig = new Figure(Math.max(COLUMN_WIDTH, content), m.top + sub + Bs.length * cellH + m.bottom);
  const left0 = m.left + (fig.width - content) / 2; // centred when narrower than a column
  const cm = (t: number) => viridis(t);
  const norm = (v: number) => (vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5);
  const digits = pf === 100 || vmax > 10 ? 1 : 3;
  pids.forEach((pid, k) => {
    const ax = new Axes(fig, left0 + k * (panelW + gap), m.top + sub, panelW, Bs.length * cellH);
    ax.setX(-0.5, As.length - 0.5).setY(-0.5, Bs.length - 0.5);
    const colors: string[][] = [];
    for (let bi = Bs.length - 1; bi >= 0; bi--) {
      colors.push(
        As.map((A) => {
          const c = cells.find((x) => x.pid === pid && x.A === A && x.B === Bs[bi]);
          return c ? cm(norm(c.mean * pf)) : "#ffffff";
        }),
      );
    }
    ax.heatmap(colors);
    for (const c of cells.filter((x) => x.pid === pid)) {
      const x = ax.x.map(As.indexOf(c.A));
      const y = ax.y.map(Bs.indexOf(c.B));
      fig.text((c.mean * pf).toFixed(digits), x, y, { size: FONT.note, anchor: "middle", baseline: "middle", color: inkOn(cm(norm(c.mean * pf))) });
    }
    ax.frame();
    ax.xTicks(As.map((_, i) => i), As.map((a) => formatNumber(a, ad)));
    if (k === 0) {
      ax.yTicks(Bs.map((_, i) => i), yLabels);
      ax.yLabel("B_0", yLabelOffset(yLabels));
    }
    ax.xLabel("A_0");
    if (pid !== null) fig.text(pid ? "with PID" : "without PID", ax.left + ax.width / 2, ax.top - 3, { size: FONT.label, anchor: "middle", baseline: "bottom" });
  });
  if (title) fig.text(title, fig.width / 2, m.top - 8, { size: FONT.title, anchor: "middle", baseline: "bottom", bold: true });
  const barX = left0 + pids.length * panelW + (pids.length - 1) * gap + 8;
  colorBar(fig, barX, m.top + sub, 5, Bs.length * cellH, vmin, vmax > vmin ? vmax : vmin + 1, cm, pf === 100 ? "accuracy (%)" : "accuracy");
  const csv = toCsv(["pid", "A", "B", "accuracy_mean", "accuracy_std", "n"], cells.map((c) => [c.pid, c.A, c.B, c.mean, c.std, c.n]));
  return finish(fig, opts, csv, { figure: "sensitivity", title, cells, rows });
}

// ---------------------------------------------------------------------------------------------
// data-efficiency (Fig. 15)

export interface DataEfficiencyRow {
  trainSize: number;
  objective: string;
  accuracy: number;
}

export function dataEfficiencyFigure(rows: readonly DataEfficiencyRow[], opts: FigureOptions = {}): FigureOutput {
  if (!rows.length) throw new PlotInputError("data-efficiency: no results to plot");
  requireFinite("data-efficiency: accuracy", rows.map((r) => r.accuracy));
  requireFinite("data-efficiency: train size", rows.map((r) => r.trainSize));
  if (rows.some((r) => r.trainSize <= 0)) throw new PlotInputError("data-efficiency: training-set sizes must be positive (the axis is logarithmic)");
  const title = titleOf(opts, "Accuracy against training-set size");
  const sizes = [...new Set(rows.map((r) => r.trainSize))].sort((a, b) => a - b);
  const objectives = [...new Set(rows.map((r) => r.objective))].sort((a, b) => (a.toLowerCase() === "abft" ? -1 : b.toLowerCase() === "abft" ? 1 : a.localeCompare(b)));
  const pf = percentFactor(rows.map((r) => r.accuracy));
  const series = objectives.map((o) => ({
    objective: o,
    points: sizes
      .map((s) => {
        const xs = rows.filter((r) => r.objective === o && r.trainSize === s).map((r) => r.accuracy);
        return xs.length ? { trainSize: s, ...meanStd(xs) } : null;
      })
      .filter((p): p is { trainSize: number; mean: number; std: number; n: number } => p !== null),
  }));
  const lo = Math.min(...series.flatMap((s) => s.points.map((p) => (p.mean - p.std) * pf)));
  const hi = Math.max(...series.flatMap((s) => s.points.map((p) => (p.mean + p.std) * pf)));
  const [y0, y1] = padDomain(lo, hi, false, 0.12);
  const yt = niceTicks(y0, y1, 5);
  const yLabels = yt.map((v) => formatNumber(v, decimalsFor(yt)));
  const fig = new Figure(COLUMN_WIDTH, 180);
  const ax = axesIn(fig, margins(title, yLabels, {}));
  const [x0, x1] = padDomain(sizes[0], sizes[sizes.length - 1], true, 0.06);
  ax.setX(x0, x1, "log").setY(y0, y1);
  ax.grid(yt);
  const entries: LegendEntry[] = [];
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const xs = s.points.map((p) => p.trainSize);
    const ys = s.points.map((p) => p.mean * pf);
    ax.errorBars(xs, ys, s.points.map((p) => p.std * pf), color);
    ax.line(xs, ys, { color, marker: MARKERS[i % MARKERS.length], markerSize: 2 });
    entries.push({ label: s.objective.toLowerCase() === "abft" || s.objective.toLowerCase() === "e2e" ? s.objective.toUpperCase() : s.objective, color, marker: MARKERS[i % MARKERS.length] });
  });
  ax.frame();
  const xt = sizes.length <= 9 ? sizes : sizes.filter((_, i) => i % Math.ceil(sizes.length / 8) === 0);
  ax.xTicks(xt, xt.map((v) => formatNumber(v, decimalsFor(xt))));
  ax.yTicks(yt);
  ax.xLabel("training-set size (log scale)");
  ax.yLabel(pf === 100 ? "accuracy (%)" : "accuracy", yLabelOffset(yLabels));
  if (title) ax.title(title);
  ax.legend(entries);
  const flat = series.flatMap((s) => s.points.map((p) => ({ objective: s.objective, ...p })));
  const csv = toCsv(["objective", "train_size", "accuracy_mean", "accuracy_std", "n"], flat.map((p) => [p.objective, p.trainSize, p.mean, p.std, p.n]));
  return finish(fig, opts, csv, { figure: "data-efficiency", title, points: flat, rows });
}

// ---------------------------------------------------------------------------------------------
// contour (Fig. 7)

export interface ContourData {
  /** grid coordinates, increasing */
  aE: number[];
  aA: number[];
  /** accuracy[i][j] at a_A = aA[i], a_E = aE[j] (NaN where a point is missing) */
  accuracy: number[][];
  /** marked points; default the base (0,0), E2E (1,0) and ABFT (0,1) models where inside the grid */
  points?: { label: string; aE: number; aA: number }[];
}

export function contourFigure(d: ContourData, opts: FigureOptions = {}): FigureOutput {
  const { aE, aA, accuracy } = d;
  if (aE.length < 2 || aA.length < 2) throw new PlotInputError(`contour: the grid is ${aE.length} x ${aA.length}; it needs at least 2 values of a_E and of a_A`);
  requireFinite("contour: a_E", aE);
  requireFinite("contour: a_A", aA);
  for (const [name, a] of [["a_E", aE], ["a_A", aA]] as const) {
    for (let i = 1; i < a.length; i++) if (!(a[i] > a[i - 1])) throw new PlotInputError(`contour: ${name} values must increase (${a[i - 1]} then ${a[i]})`);
  }
  if (accuracy.length !== aA.length || accuracy.some((r) => r.length !== aE.length)) {
    throw new PlotInputError(`contour: accuracy must be ${aA.length} rows (a_A) of ${aE.length} values (a_E)`);
  }
  const values = accuracy.flat().filter(Number.isFinite);
  if (!values.length) throw new PlotInputError("contour: every accuracy is missing");
  const title = titleOf(opts, "Accuracy over the interpolation plane");
  const pf = percentFactor(values);
  const z = accuracy.map((r) => r.map((v) => v * pf));
  const [vmin, vmax] = [Math.min(...values) * pf, Math.max(...values) * pf];
  let levels = niceTicks(vmin, vmax, 8);
  if (levels[0] > vmin) levels = [levels[0] - (levels[1] - levels[0] || 1), ...levels];
  if (levels[levels.length - 1] < vmax) levels.push(levels[levels.length - 1] + (levels[1] - levels[0] || 1));
  if (levels.length < 2) levels = [vmin - 0.5, vmin + 0.5];
  const nb = levels.length - 1;
  const bandColor = (b: number): Rgb => viridisRgb((b + 0.5) / nb);
  const yt = niceTicks(aA[0], aA[aA.length - 1], 5);
  const yLabels = yt.map((v) => formatNumber(v, decimalsFor(yt)));
  const m = margins(title, yLabels, { right: 44 });
  const side = COLUMN_WIDTH - m.left - m.right;
  const fig = new Figure(COLUMN_WIDTH, m.top + side * 0.85 + m.bottom);
  const ax = axesIn(fig, m);
  ax.setX(aE[0], aE[aE.length - 1]).setY(aA[0], aA[aA.length - 1]);
  ax.contourFill(aE, aA, z, levels, bandColor);
  ax.contourLines(aE, aA, z, levels.slice(1, -1), "#333333", 0.4);
  const points = d.points ?? [
    { label: "base", aE: 0, aA: 0 },
    { label: "E2E", aE: 1, aA: 0 },
    { label: "ABFT", aE: 0, aA: 1 },
  ];
  for (const p of points) {
    if (p.aE < aE[0] || p.aE > aE[aE.length - 1] || p.aA < aA[0] || p.aA > aA[aA.length - 1]) continue;
    const [x, y] = [ax.x.map(p.aE), ax.y.map(p.aA)];
    fig.fill(new Path().circle(x, y, 2.3), "#ffffff");
    fig.fill(new Path().circle(x, y, 1.5), "#d62728");
    const w = measureText(p.label, FONT.note, true);
    const right = x + 3.5 + w < ax.right;
    fig.fill(new Path().rect(right ? x + 3 : x - 3 - w - 1.5, y - 3.3, w + 1.5, 6.6), "#ffffff", 0.75);
    fig.text(p.label, right ? x + 3.75 : x - 3.75, y, { size: FONT.note, anchor: right ? "start" : "end", baseline: "middle", bold: true });
  }
  ax.frame();
  const xt = niceTicks(aE[0], aE[aE.length - 1], 5);
  ax.xTicks(xt);
  ax.yTicks(yt);
  ax.xLabel("α_E");
  ax.yLabel("α_A", yLabelOffset(yLabels));
  if (title) ax.title(title);
  colorBar(fig, ax.right + 6, ax.top, 5, ax.height, levels[0], levels[nb], viridis, pf === 100 ? "accuracy (%)" : "accuracy", levels, levels.length <= 9 ? levels : levels.filter((_, i) => i % 2 === 0));
  const csv = toCsv(["a_E", "a_A", "accuracy"], aA.flatMap((a, i) => aE.map((e, j) => [e, a, accuracy[i][j]])));
  return finish(fig, opts, csv, { figure: "contour", title, aE, aA, accuracy: accuracy.map((r) => r.map((v) => (Number.isFinite(v) ? v : null))), points });
}
