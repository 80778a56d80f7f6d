// Scales of the figures (data values to points, linear or log), round tick values, number labels,
// domains padded around the data, and the colour bar: a colour scale with its ticks and label.
// Axes (axes.ts) and the figures (figures*.ts) use them.
import { measureText } from "./font.ts";
import { Path } from "./path.ts";
import { FONT, INK, type Figure } from "./svg.ts";

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
// Colour bar

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
