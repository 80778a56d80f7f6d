// The plotting core of the paper figures: a Figure is a list of drawing items in points (1/72
// inch, y down) that is written as SVG (toSvg) and rasterised to PNG (toPng, by
// src/analysis/raster.ts; the same SVG rasterised by sharp looks the same, test/analysis checks
// it). Text is drawn as glyph outlines (src/analysis/font.ts), so neither needs a font installed.
//
// On top: Axes (linear/log/band scales, ticks, frame, grid, labels, title, lines, markers, error
// bars, bars, heatmap cells, filled contours from a grid, contour lines, legends placed where they
// hide the fewest data points) and a colour bar. Sizes are chosen for a paper column (3.4 in =
// 245 pt wide): 6.5 pt tick labels, 7.5 pt axis labels, 8.5 pt bold titles.
import { measureText, textPath, type TextStyle } from "./font.ts";
import { Path } from "./path.ts";
import { Canvas, dashPolyline, encodePng, strokePolygons, type Rgb } from "./raster.ts";

export const FONT = { tick: 6.5, label: 7.5, title: 8.5, legend: 6.5, note: 6 };
export const COLUMN_WIDTH = 245;
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const INK = "#222222";
const GRID = "#e4e4e4";
const MISSING: Rgb = [0.86, 0.86, 0.86];

export type Marker = "circle" | "square" | "triangle" | "diamond" | "none";

type Item =
  | { kind: "fill"; path: Path; color: string; opacity: number }
  | { kind: "stroke"; path: Path; color: string; width: number; dash?: number[]; round: boolean; opacity: number }
  | { kind: "cells"; cells: { x: number; y: number; w: number; h: number; color: string }[] }
  | { kind: "image"; x: number; y: number; w: number; h: number; cols: number; rows: number; rgb: Uint8Array };

export function hexToRgb(hex: string): Rgb {
  const v = parseInt(hex.slice(1), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

function rgbToHex([r, g, b]: Rgb): string {
  return "#" + [r, g, b].map((c) => Math.round(Math.min(1, Math.max(0, c)) * 255).toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------------------------
// Figure: items, SVG, PNG

export interface StrokeStyle {
  width?: number;
  dash?: number[];
  /** round caps and joins (default) or butt caps */
  round?: boolean;
  opacity?: number;
}

export class Figure {
  readonly items: Item[] = [];

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  fill(path: Path, color: string, opacity = 1): void {
    if (!path.empty) this.items.push({ kind: "fill", path, color, opacity });
  }

  stroke(path: Path, color: string, s: StrokeStyle = {}): void {
    if (!path.empty) this.items.push({ kind: "stroke", path, color, width: s.width ?? 0.75, dash: s.dash, round: s.round ?? true, opacity: s.opacity ?? 1 });
  }

  line(x0: number, y0: number, x1: number, y1: number, color: string, s: StrokeStyle = {}): void {
    this.stroke(new Path().moveTo(x0, y0).lineTo(x1, y1), color, { round: false, ...s });
  }

  text(str: string, x: number, y: number, style: TextStyle & { color?: string }): void {
    this.fill(textPath(str, x, y, style), style.color ?? INK);
  }

  /** Axis-aligned rectangles drawn on whole pixels (heatmaps, bars, colour bars: no seams). */
  cells(cells: { x: number; y: number; w: number; h: number; color: string }[]): void {
    if (cells.length) this.items.push({ kind: "cells", cells });
  }

  /** An RGB raster (cols x rows bytes) stretched over a rectangle. */
  image(x: number, y: number, w: number, h: number, cols: number, rows: number, rgb: Uint8Array): void {
    this.items.push({ kind: "image", x, y, w, h, cols, rows, rgb });
  }

  /** Pixel size of the PNG at `scale` pixels per point. */
  pixelSize(scale: number): [number, number] {
    return [Math.round(this.width * scale), Math.round(this.height * scale)];
  }

  toSvg(): string {
    const f = (v: number) => String(Math.round(v * 100) / 100);
    const out = [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${f(this.width)}pt" height="${f(this.height)}pt" viewBox="0 0 ${f(this.width)} ${f(this.height)}">`,
      `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ];
    for (const it of this.items) {
      const op = "opacity" in it && it.opacity < 1 ? ` opacity="${it.opacity}"` : "";
      if (it.kind === "fill") out.push(`<path d="${it.path.toSvgData()}" fill="${it.color}"${op}/>`);
      else if (it.kind === "stroke") {
        const dash = it.dash ? ` stroke-dasharray="${it.dash.map(f).join(" ")}"` : "";
        const ends = it.round ? ` stroke-linecap="round" stroke-linejoin="round"` : ` stroke-linecap="butt" stroke-linejoin="miter"`;
        out.push(`<path d="${it.path.toSvgData()}" fill="none" stroke="${it.color}" stroke-width="${f(it.width)}"${dash}${ends}${op}/>`);
      } else if (it.kind === "cells") {
        out.push(`<g shape-rendering="crispEdges">`);
        for (const c of it.cells) out.push(`<rect x="${f(c.x)}" y="${f(c.y)}" width="${f(c.w)}" height="${f(c.h)}" fill="${c.color}"/>`);
        out.push(`</g>`);
      } else {
        const png = encodePng(it.cols, it.rows, it.rgb).toString("base64");
        out.push(
          `<image x="${f(it.x)}" y="${f(it.y)}" width="${f(it.w)}" height="${f(it.h)}" preserveAspectRatio="none" image-rendering="optimizeSpeed" href="data:image/png;base64,${png}"/>`,
        );
      }
    }
    out.push("</svg>", "");
    return out.join("\n");
  }

  /** Rasterises at `scale` pixels per point (4 = 288 dpi, recorded in the PNG). */
  toPng(scale = 4): Buffer {
    const [w, h] = this.pixelSize(scale);
    const canvas = new Canvas(w, h);
    for (const it of this.items) {
      if (it.kind === "fill") {
        canvas.fill(it.path.flatten(scale).map((p) => p.pts), hexToRgb(it.color), it.opacity);
      } else if (it.kind === "stroke") {
        const wpx = it.width * scale;
        const polys: number[][] = [];
        for (const sub of it.path.flatten(scale)) {
          const pts = sub.closed ? [...sub.pts, sub.pts[0], sub.pts[1]] : sub.pts;
          const pieces = it.dash ? dashPolyline(pts, it.dash.map((d) => d * scale)) : [pts];
          for (const piece of pieces) polys.push(...strokePolygons(piece, false, wpx, it.round));
        }
        canvas.fill(polys, hexToRgb(it.color), it.opacity);
      } else if (it.kind === "cells") {
        for (const c of it.cells) canvas.fillCrisp(c.x * scale, c.y * scale, c.w * scale, c.h * scale, hexToRgb(c.color));
      } else {
        canvas.drawImage(it.x * scale, it.y * scale, it.w * scale, it.h * scale, it.cols, it.rows, it.rgb);
      }
    }
    return encodePng(w, h, canvas.bytes(), 72 * scale);
  }
}

// ---------------------------------------------------------------------------------------------
// Scales and ticks

export type ScaleKind = "linear" | "log";

export class Scale {
  constructor(
    readonly kind: ScaleKind,
    readonly d0: number,
    readonly d1: number,
    readonly r0: number,
    readonly r1: number,
  ) {}

  map(v: number): number {
    const t = this.kind === "log" ? (Math.log(v) - Math.log(this.d0)) / (Math.log(this.d1) - Math.log(this.d0)) : (v - this.d0) / (this.d1 - this.d0);
    return this.r0 + t * (this.r1 - this.r0);
  }
}

/** About n round-numbered ticks (steps 1, 2, 2.5, 5 times a power of ten) within [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw * 0.999) ?? 10 * p;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Math.abs(k * step) < step * 1e-9 ? 0 : k * step);
  return out;
}

/** Decimal places that show every value of the list distinctly (at most 4). */
export function decimalsFor(values: readonly number[]): number {
  for (let d = 0; d <= 4; d++) {
    if (values.every((v) => Math.abs(Number(v.toFixed(d)) - v) <= Math.abs(v) * 1e-9 + 1e-12)) return d;
  }
  return 4;
}

/** A number for a label: fixed decimals, a true minus sign, exponent form beyond 1e5. */
export function formatNumber(v: number, decimals: number): string {
  const s = Math.abs(v) >= 1e5 ? v.toExponential(decimals > 0 ? Math.min(decimals, 2) : 0).replace("e+", "e") : v.toFixed(decimals);
  return s.replace(/^-/, "−");
}

/** A domain around the data with 5% air on both sides (log: in ratio), or around a single value. */
export function padDomain(lo: number, hi: number, log = false, air = 0.05): [number, number] {
  if (log) {
    const [a, b] = [Math.log(lo), Math.log(hi)];
    const pad = b > a ? (b - a) * air : Math.log(2);
    return [Math.exp(a - pad), Math.exp(b + pad)];
  }
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  const pad = (hi - lo) * air;
  return [lo - pad, hi + pad];
}

// ---------------------------------------------------------------------------------------------
// Colour maps

// viridis, sampled at 0, 1/8, ..., 1
const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"].map(hexToRgb);

/** viridis at t in [0, 1] (linear between 9 samples). */
export function viridis(t: number): string {
  return rgbToHex(viridisRgb(t));
}

export function viridisRgb(t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Black or white, whichever reads better on the background colour. */
export function inkOn(bg: string): string {
  const [r, g, b] = hexToRgb(bg);
  return 0.299 * r + 0.587 * g + 0.114 * b > 0.55 ? INK : "#ffffff";
}

// ---------------------------------------------------------------------------------------------
// Markers

export function markerPath(m: Marker, x: number, y: number, r: number): Path {
  const p = new Path();
  if (m === "circle") return p.circle(x, y, r);
  if (m === "square") return p.rect(x - r * 0.88, y - r * 0.88, r * 1.76, r * 1.76);
  if (m === "triangle") return p.polygon([[x, y - r * 1.15], [x + r * 1.05, y + r * 0.7], [x - r * 1.05, y + r * 0.7]]);
  if (m === "diamond") return p.polygon([[x, y - r * 1.2], [x + r, y], [x, y + r * 1.2], [x - r, y]]);
  return p;
}

export const MARKERS: Marker[] = ["circle", "square", "triangle", "diamond"];

// ---------------------------------------------------------------------------------------------
// Axes

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

/**
 * A vertical colour bar at (x, top) of the given size: continuous (vmin..vmax through `cmap`) or,
 * with levels, one band per interval. Ticks and label on its right.
 */
export function colorBar(
  fig: Figure,
  x: number,
  top: number,
  w: number,
  h: number,
  vmin: number,
  vmax: number,
  cmap: (t: number) => string,
  label: string,
  levels?: readonly number[],
  ticks?: readonly number[],
): void {
  const cells: { x: number; y: number; w: number; h: number; color: string }[] = [];
  const yOf = (v: number) => top + h - ((v - vmin) / (vmax - vmin || 1)) * h;
  if (levels) {
    for (let b = 0; b + 1 < levels.length; b++) {
      const [ya, yb] = [yOf(levels[b]), yOf(levels[b + 1])];
      cells.push({ x, y: yb, w, h: ya - yb, color: cmap((b + 0.5) / (levels.length - 1)) });
    }
  } else {
    const n = 64;
    for (let k = 0; k < n; k++) cells.push({ x, y: top + h - ((k + 1) / n) * h, w, h: h / n, color: cmap((k + 0.5) / n) });
  }
  fig.cells(cells);
  fig.stroke(new Path().rect(x, top, w, h), INK, { width: 0.5, round: false });
  const tv = ticks ?? niceTicks(vmin, vmax, 4);
  const d = decimalsFor(tv);
  const p = new Path();
  let widest = 0;
  for (const v of tv) {
    if (v < vmin - 1e-9 || v > vmax + 1e-9) continue;
    p.moveTo(x + w, yOf(v)).lineTo(x + w + 2, yOf(v));
    const t = formatNumber(v, d);
    widest = Math.max(widest, measureText(t, FONT.tick));
    fig.text(t, x + w + 3.5, yOf(v), { size: FONT.tick, baseline: "middle" });
  }
  fig.stroke(p, INK, { width: 0.5, round: false });
  fig.text(label, x + w + 6 + widest, top + h / 2, { size: FONT.label, anchor: "middle", baseline: "top", rotate: -90, rich: true });
}
