// The plotting core of the paper figures: a Figure is a list of drawing items in points (1/72
// inch, y down) that is written as SVG (toSvg) and rasterised to PNG (toPng, by
// src/analysis/raster.ts; the same SVG rasterised by sharp looks the same, test/analysis checks
// it). Text is drawn as glyph outlines (src/analysis/font.ts), so neither needs a font installed.
//
// This file: the Figure, the sizes and colours (paper column 3.4 in = 245 pt wide: 6.5 pt tick
// labels, 7.5 pt axis labels, 8.5 pt bold titles), colour maps and marker shapes. On top of it:
// axes.ts (Axes: frame, grid, ticks, labels, lines, bars, heatmaps, contours, legends) and
// scales.ts (scales, tick values, number labels, the colour bar).
import { textPath, type TextStyle } from "./font.ts";
import { Path } from "./path.ts";
import { Canvas, dashPolyline, encodePng, strokePolygons, type Rgb } from "./raster.ts";

export const FONT = { tick: 6.5, label: 7.5, title: 8.5, legend: 6.5, note: 6 };
export const COLUMN_WIDTH = 245;
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
export const INK = "#222222";

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
