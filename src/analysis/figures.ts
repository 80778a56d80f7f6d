// The paper's figures, one function per kind, from plain data (run_figures.ts reads run
// directories and sweep results into these inputs). Each returns the PNG, the same figure as SVG,
// and the data behind it as CSV and JSON (`json.figure` names the kind).
//
//   heads            induction heads per step over training, one line per run      (paper Fig. 5)
//   layers           per-layer induction and correct-label attention, before/after  (Fig. 4)
//   shift            ||θ' − θ||_F per layer for W_Q and W_K                          (Appendix B)
//                    (these three in figures_training.ts)
//   attention        one prompt, one layer: last token's attention, heads x tokens  (Fig. 16)
//                    (figures_attention.ts)
//   sensitivity      accuracy over A0 x B0, without and with PID (mean over seeds)  (Fig. 6)
//   data-efficiency  accuracy against training-set size, ABFT vs E2E               (Fig. 15)
//   contour          accuracy over the interpolation plane (a_E, a_A)              (Fig. 7)
//                    (these three in figures_accuracy.ts)
//
// Accuracies given as fractions (all ≤ 1) are drawn as percentages; the CSV and JSON keep the
// numbers as given. Widths are in points; a paper column is 245 pt (3.4 in), and the PNG has
// `scale` pixels per point (default 4, i.e. 288 dpi).
//
// This file: what every kind shares (the output, the options, the input error) and the layout
// helpers (margins, axes in a figure, percentages, mean ± std, ticks).
import { AbftError } from "../gpu/errors.ts";
import { Axes } from "./axes.ts";
import { niceTicks } from "./scales.ts";
import { FONT, type Figure } from "./svg.ts";

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
export const LABEL_H = 0.95 * FONT.label;

/** One RFC 4180 CSV text from a header and rows. */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | boolean | null | undefined)[])[]): string {
  const cell = (v: string | number | boolean | null | undefined) => {
    const s = v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v)) ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(",")).join("\n") + "\n";
}

export function finish(fig: Figure, opts: FigureOptions, csv: string, json: Record<string, unknown>): FigureOutput {
  const scale = opts.scale ?? 4;
  const [width, height] = fig.pixelSize(scale);
  return { png: fig.toPng(scale), svg: fig.toSvg(), csv, json, width, height };
}

export function titleOf(opts: FigureOptions, fallback: string): string {
  return opts.title ?? fallback;
}

export interface Margins {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Margins around one plot: room for the title, tick labels and axis labels. */
export function margins(title: string, yTickLabels: readonly string[], opts: { xLabel?: boolean; yLabel?: boolean; right?: number; bottomExtra?: number }): Margins {
  return {
    left: 4 + (opts.yLabel === false ? 0 : LABEL_H + 3) + Axes.yTickWidth(yTickLabels) + 4 + 1,
    right: opts.right ?? 10,
    top: title ? FONT.title + 9 : 6,
    bottom: TICK_H + (opts.xLabel === false ? 0 : 4 + LABEL_H) + 4 + (opts.bottomExtra ?? 0),
  };
}

export function axesIn(fig: Figure, m: Margins): Axes {
  return new Axes(fig, m.left, m.top, fig.width - m.left - m.right, fig.height - m.top - m.bottom);
}

export function yLabelOffset(yTickLabels: readonly string[]): number {
  return Axes.yTickWidth(yTickLabels) + 4 + 3;
}

/** The scale factor that shows accuracies as percentages (100 when all are fractions). */
export function percentFactor(values: readonly number[]): number {
  const v = values.filter(Number.isFinite);
  return v.length && v.every((x) => Math.abs(x) <= 1) ? 100 : 1;
}

export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export function requireFinite(what: string, xs: readonly number[]): void {
  const bad = xs.findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
  if (bad >= 0) {
    const v = xs[bad] as unknown;
    throw new PlotInputError(`${what}: value ${bad} is ${typeof v === "number" ? String(v) : JSON.stringify(v)}, not a finite number`);
  }
}

/** Ticks for a y range starting at zero. */
export function zeroBasedY(maxValue: number): { d1: number; ticks: number[] } {
  const top = maxValue > 0 ? maxValue * 1.08 : 1;
  const ticks = niceTicks(0, top, 5);
  return { d1: Math.max(top, ticks[ticks.length - 1]), ticks };
}

/** Ticks over integer categories 0..n-1: every one, or every 2nd, 5th, ... so that at most `max` show. */
export function categoryTicks(n: number, max: number): number[] {
  const step = [1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100].find((s) => n / s <= max) ?? Math.ceil(n / max);
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}
