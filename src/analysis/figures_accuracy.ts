// The accuracy figures of sweeps and interpolation grids (figures.ts has the shared pieces):
// sensitivity to the initial A and B, with and without PID (Fig. 6, heatmaps); accuracy against
// training-set size, ABFT vs E2E (Fig. 15); accuracy over the interpolation plane (Fig. 7, contours).
import { Axes, type LegendEntry } from "./axes.ts";
import { axesIn, finish, margins, meanStd, percentFactor, PlotInputError, requireFinite, titleOf, toCsv, yLabelOffset, type FigureOptions, type FigureOutput } from "./figures.ts";
import { measureText } from "./font.ts";
import { Path } from "./path.ts";
import type { Rgb } from "./raster.ts";
import { colorBar, decimalsFor, formatNumber, niceTicks, padDomain } from "./scales.ts";
import { COLUMN_WIDTH, Figure, FONT, inkOn, MARKERS, PALETTE, viridis, viridisRgb } from "./svg.ts";

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
