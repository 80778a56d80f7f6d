// Axes of the figures: one plot area on a Figure (svg.ts) with x and y scales (scales.ts), and what
// is drawn in it: frame, grid, ticks, labels, title, lines, markers, error bars, bars, heatmap
// cells, filled contours from a grid, contour lines, and legends placed where they hide the fewest
// data points.
import { measureText } from "./font.ts";
import { Path } from "./path.ts";
import type { Rgb } from "./raster.ts";
import { decimalsFor, formatNumber, Scale, type ScaleKind } from "./scales.ts";
import { FONT, INK, markerPath, type Figure, type Marker } from "./svg.ts";

const GRID = "#e4e4e4";
const MISSING: Rgb = [0.86, 0.86, 0.86];

export interface LineStyle {
  color: string;
  width?: number;
  dash?: number[];
  marker?: Marker;
  markerSize?: number;
}

export interface LegendEntry {
  label: string;
  color: string;
  /** a line sample (with optional dash and marker) or a filled patch */
  patch?: boolean;
  dash?: number[];
  marker?: Marker;
}

export type Band = { kind: "band"; labels: string[] };

export class Axes {
  x: Scale;
  y: Scale;
  /** points drawn in figure coordinates, to place the legend where it hides the fewest */
  private readonly drawn: [number, number][] = [];

  constructor(
    readonly fig: Figure,
    readonly left: number,
    readonly top: number,
    readonly width: number,
    readonly height: number,
  ) {
    this.x = new Scale("linear", 0, 1, left, left + width);
    this.y = new Scale("linear", 0, 1, top + height, top);
  }

  get right(): number {
    return this.left + this.width;
  }
  get bottom(): number {
    return this.top + this.height;
  }

  setX(d0: number, d1: number, kind: ScaleKind = "linear"): this {
    this.x = new Scale(kind, d0, d1, this.left, this.right);
    return this;
  }

  setY(d0: number, d1: number, kind: ScaleKind = "linear"): this {
    this.y = new Scale(kind, d0, d1, this.bottom, this.top);
    return this;
  }

  /** Light horizontal (and optionally vertical) grid lines at the tick values. */
  grid(yTicks: readonly number[], xTicks: readonly number[] = []): void {
    const p = new Path();
    for (const v of yTicks) p.moveTo(this.left, this.y.map(v)).lineTo(this.right, this.y.map(v));
    for (const v of xTicks) p.moveTo(this.x.map(v), this.top).lineTo(this.x.map(v), this.bottom);
    this.fig.stroke(p, GRID, { width: 0.4, round: false });
  }

  frame(): void {
    this.fig.stroke(new Path().rect(this.left, this.top, this.width, this.height), INK, { width: 0.6, round: false });
  }

  /** Ticks and labels under the plot; labels default to the values, formatted alike. */
  xTicks(values: readonly number[], labels?: readonly string[], rotate = 0): void {
    const d = decimalsFor(values);
    const p = new Path();
    values.forEach((v, i) => {
      const x = this.x.map(v);
      p.moveTo(x, this.bottom).lineTo(x, this.bottom + 2.5);
      const text = labels ? labels[i] : formatNumber(v, d);
      if (rotate) this.fig.text(text, x, this.bottom + 4, { size: FONT.tick, anchor: "end", baseline: "middle", rotate });
      else this.fig.text(text, x, this.bottom + 4, { size: FONT.tick, anchor: "middle", baseline: "top" });
    });
    this.fig.stroke(p, INK, { width: 0.6, round: false });
  }

  yTicks(values: readonly number[], labels?: readonly string[]): void {
    const d = decimalsFor(values);
    const p = new Path();
    values.forEach((v, i) => {
      const y = this.y.map(v);
      p.moveTo(this.left, y).lineTo(this.left - 2.5, y);
      this.fig.text(labels ? labels[i] : formatNumber(v, d), this.left - 4, y, { size: FONT.tick, anchor: "end", baseline: "middle" });
    });
    this.fig.stroke(p, INK, { width: 0.6, round: false });
  }

  /** Width of the widest y tick label, for the left margin. */
  static yTickWidth(labels: readonly string[]): number {
    return Math.max(0, ...labels.map((l) => measureText(l, FONT.tick)));
  }

  xLabel(text: string, offset = 14): void {
    this.fig.text(text, this.left + this.width / 2, this.bottom + offset, { size: FONT.label, anchor: "middle", baseline: "top", rich: true });
  }

  yLabel(text: string, offset: number): void {
    this.fig.text(text, this.left - offset, this.top + this.height / 2, { size: FONT.label, anchor: "middle", baseline: "bottom", rotate: -90, rich: true });
  }

  title(text: string): void {
    this.fig.text(text, this.left + this.width / 2, this.top - 5, { size: FONT.title, anchor: "middle", baseline: "bottom", bold: true, rich: true });
  }

  private remember(xs: readonly number[], ys: readonly number[], joined: boolean): void {
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      this.drawn.push([xs[i], ys[i]]);
      if (joined && i + 1 < xs.length && Number.isFinite(xs[i + 1]) && Number.isFinite(ys[i + 1])) {
        const n = Math.ceil(Math.hypot(xs[i + 1] - xs[i], ys[i + 1] - ys[i]) / 3);
        for (let k = 1; k < n; k++) this.drawn.push([xs[i] + ((xs[i + 1] - xs[i]) * k) / n, ys[i] + ((ys[i + 1] - ys[i]) * k) / n]);
      }
    }
  }

  line(xs: readonly number[], ys: readonly number[], s: LineStyle): void {
    const px = xs.map((v) => this.x.map(v));
    const py = ys.map((v) => this.y.map(v));
    this.fig.stroke(new Path().polyline(px, py), s.color, { width: s.width ?? 1.1, dash: s.dash });
    this.remember(px, py, true);
    if (s.marker && s.marker !== "none") this.markersAt(px, py, s.marker, s.color, s.markerSize ?? 1.7);
  }

  scatter(xs: readonly number[], ys: readonly number[], s: LineStyle): void {
    const px = xs.map((v) => this.x.map(v));
    const py = ys.map((v) => this.y.map(v));
    this.remember(px, py, false);
    this.markersAt(px, py, s.marker ?? "circle", s.color, s.markerSize ?? 1.9);
  }

  private markersAt(px: number[], py: number[], m: Marker, color: string, r: number): void {
    const p = new Path();
    for (let i = 0; i < px.length; i++) if (Number.isFinite(px[i]) && Number.isFinite(py[i])) p.append(markerPath(m, px[i], py[i], r));
    this.fig.fill(p, color);
  }

  /** Vertical error bars of half-length err around ys. */
  errorBars(xs: readonly number[], ys: readonly number[], err: readonly number[], color: string): void {
    const p = new Path();
    xs.forEach((x, i) => {
      if (!(err[i] > 0)) return;
      const X = this.x.map(x);
      const [a, b] = [this.y.map(ys[i] - err[i]), this.y.map(ys[i] + err[i])];
      p.moveTo(X, a).lineTo(X, b).moveTo(X - 1.5, a).lineTo(X + 1.5, a).moveTo(X - 1.5, b).lineTo(X + 1.5, b);
      this.remember([X, X], [a, b], true);
    });
    this.fig.stroke(p, color, { width: 0.6, round: false });
  }

  /** Grouped bars: at each category i, one bar per series side by side; x domain is [-0.5, n-0.5]. */
  bars(series: { values: readonly number[]; color: string }[], groupWidth = 0.8): void {
    const k = series.length;
    const unit = this.width / (this.x.d1 - this.x.d0);
    const bw = (groupWidth * unit) / k;
    const y0 = this.y.map(Math.max(this.y.d0, 0));
    const cells: { x: number; y: number; w: number; h: number; color: string }[] = [];
    series.forEach((s, j) => {
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) return;
        const x = this.x.map(i) - (groupWidth * unit) / 2 + j * bw;
        const y = this.y.map(v);
        cells.push({ x, y: Math.min(y, y0), w: bw, h: Math.abs(y0 - y), color: s.color });
        this.remember([x, x + bw], [y, y], true);
      });
    });
    this.fig.cells(cells);
  }

  /** A matrix of colours, row 0 at the top, filling the plot area. */
  heatmap(colors: readonly (readonly string[])[]): void {
    const rows = colors.length;
    const cols = rows ? colors[0].length : 0;
    const cw = this.width / cols;
    const ch = this.height / rows;
    const cells: { x: number; y: number; w: number; h: number; color: string }[] = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) cells.push({ x: this.left + c * cw, y: this.top + r * ch, w: cw, h: ch, color: colors[r][c] });
    this.fig.cells(cells);
  }

  /**
   * Filled contours of z over a grid (z[i][j] at x = xs[j], y = ys[i], both increasing): each plot
   * pixel takes the colour of the band its bilinearly interpolated value falls in (light grey in
   * the grid cells next to a missing value).
   * `pixels` sets the raster's resolution (pixels per point).
   */
  contourFill(xs: readonly number[], ys: readonly number[], z: readonly (readonly number[])[], levels: readonly number[], color: (band: number) => Rgb, pixels = 4): void {
    const cols = Math.max(1, Math.round(this.width * pixels));
    const rows = Math.max(1, Math.round(this.height * pixels));
    const rgb = new Uint8Array(cols * rows * 3);
    for (let r = 0; r < rows; r++) {
      const yv = this.y.d1 + ((r + 0.5) / rows) * (this.y.d0 - this.y.d1);
      for (let c = 0; c < cols; c++) {
        const xv = this.x.d0 + ((c + 0.5) / cols) * (this.x.d1 - this.x.d0);
        const v = bilinear(xs, ys, z, xv, yv);
        let band = 0;
        while (band < levels.length - 2 && v >= levels[band + 1]) band++;
        const col = Number.isFinite(v) ? color(band) : MISSING; // no data: light grey
        rgb.set(col.map((q) => Math.round(q * 255)), (r * cols + c) * 3);
      }
    }
    this.fig.image(this.left, this.top, this.width, this.height, cols, rows, rgb);
  }

  /** Iso-lines of z at the levels (marching squares over the grid cells). */
  contourLines(xs: readonly number[], ys: readonly number[], z: readonly (readonly number[])[], levels: readonly number[], color: string, width = 0.5): void {
    const p = new Path();
    for (const lv of levels) {
      for (let i = 0; i + 1 < ys.length; i++) {
        for (let j = 0; j + 1 < xs.length; j++) {
          const corners: [number, number, number][] = [
            [xs[j], ys[i], z[i][j]],
            [xs[j + 1], ys[i], z[i][j + 1]],
            [xs[j + 1], ys[i + 1], z[i + 1][j + 1]],
            [xs[j], ys[i + 1], z[i + 1][j]],
          ];
          if (corners.some((q) => !Number.isFinite(q[2]))) continue;
          const hits: [number, number][] = [];
          for (let e = 0; e < 4; e++) {
            const [a, b] = [corners[e], corners[(e + 1) % 4]];
            if (a[2] < lv !== b[2] < lv) {
              const t = (lv - a[2]) / (b[2] - a[2]);
              hits.push([a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]);
            }
          }
          // 2 crossings: one segment; 4 (a saddle): pair them by the cell's centre value
          const pairs: [number, number][] =
            hits.length === 2 ? [[0, 1]] : hits.length === 4 ? ((corners.reduce((s, q) => s + q[2], 0) / 4 < lv) === (corners[0][2] < lv) ? [[0, 3], [1, 2]] : [[0, 1], [2, 3]]) : [];
          for (const [a, b] of pairs) p.moveTo(this.x.map(hits[a][0]), this.y.map(hits[a][1])).lineTo(this.x.map(hits[b][0]), this.y.map(hits[b][1]));
        }
      }
    }
    this.fig.stroke(p, color, { width, opacity: 0.8 });
  }

  /** A legend box in the corner (inside the plot) that hides the fewest drawn points. */
  legend(entries: readonly LegendEntry[], where: "auto" | "outside" = "auto"): void {
    if (!entries.length) return;
    const rowH = FONT.legend + 2.5;
    const sample = 13;
    const pad = 3;
    // more than 4 entries: 2 columns (3 beyond 10), filled row by row
    const ncol = entries.length > 10 ? 3 : entries.length > 4 ? 2 : 1;
    const nrow = Math.ceil(entries.length / ncol);
    const colW = sample + 3 + Math.max(...entries.map((e) => measureText(e.label, FONT.legend, false, true))) + 5;
    const w = pad * 2 + colW * ncol - 5;
    const h = pad * 2 + rowH * nrow - 2.5;
    let x: number;
    let y: number;
    if (where === "outside") {
      x = this.right + 6;
      y = this.top;
    } else {
      const m = 3;
      const corners: [number, number][] = [
        [this.right - w - m, this.top + m],
        [this.left + m, this.top + m],
        [this.right - w - m, this.bottom - h - m],
        [this.left + m, this.bottom - h - m],
      ];
      const hidden = corners.map(([cx, cy]) => this.drawn.filter(([px, py]) => px >= cx - 2 && px <= cx + w + 2 && py >= cy - 2 && py <= cy + h + 2).length);
      const best = hidden.indexOf(Math.min(...hidden));
      [x, y] = corners[best];
    }
    this.fig.fill(new Path().rect(x, y, w, h), "#ffffff", 0.88);
    this.fig.stroke(new Path().rect(x, y, w, h), "#bbbbbb", { width: 0.4, round: false });
    entries.forEach((e, i) => {
      const cy = y + pad + Math.floor(i / ncol) * rowH + FONT.legend / 2;
      const sx = x + pad + (i % ncol) * colW;
      if (e.patch) this.fig.fill(new Path().rect(sx + 2, cy - 3, sample - 4, 6), e.color);
      else {
        this.fig.stroke(new Path().moveTo(sx, cy).lineTo(sx + sample, cy), e.color, { width: 1.1, dash: e.dash, round: false });
        if (e.marker && e.marker !== "none") this.fig.fill(markerPath(e.marker, sx + sample / 2, cy, 1.7), e.color);
      }
      this.fig.text(e.label, sx + sample + 3, cy, { size: FONT.legend, baseline: "middle", rich: true });
    });
  }
}

/** Bilinear interpolation of z (rows over ys, columns over xs, both increasing) at (x, y). */
export function bilinear(xs: readonly number[], ys: readonly number[], z: readonly (readonly number[])[], x: number, y: number): number {
  const locate = (a: readonly number[], v: number): [number, number] => {
    if (a.length === 1) return [0, 0];
    let i = 0;
    while (i < a.length - 2 && v > a[i + 1]) i++;
    const t = (v - a[i]) / (a[i + 1] - a[i]);
    return [i, Math.min(1, Math.max(0, t))];
  };
  const [j, tx] = locate(xs, x);
  const [i, ty] = locate(ys, y);
  const j1 = Math.min(j + 1, xs.length - 1);
  const i1 = Math.min(i + 1, ys.length - 1);
  const a = z[i][j] * (1 - tx) + z[i][j1] * tx;
  const b = z[i1][j] * (1 - tx) + z[i1][j1] * tx;
  return a * (1 - ty) + b * ty;
}
