// Vector paths for the figures: the geometry both back ends draw (src/analysis/svg.ts writes it as
// SVG path data, src/analysis/raster.ts fills it after flattening curves to polygons).
// Coordinates are figure points (1/72 inch), x to the right, y down, as in SVG.

const M = 0;
const L = 1;
const Q = 2;
const C = 3;
const Z = 4;
const ARITY = [2, 2, 4, 6, 0];
const LETTER = ["M", "L", "Q", "C", "Z"];

/** Bezier constant for a quarter circle with one cubic */
const KAPPA = 0.5522847498;

export class Path {
  readonly ops: number[] = [];
  readonly xy: number[] = [];

  moveTo(x: number, y: number): this {
    this.ops.push(M);
    this.xy.push(x, y);
    return this;
  }
  lineTo(x: number, y: number): this {
    this.ops.push(L);
    this.xy.push(x, y);
    return this;
  }
  quadTo(cx: number, cy: number, x: number, y: number): this {
    this.ops.push(Q);
    this.xy.push(cx, cy, x, y);
    return this;
  }
  cubicTo(c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number): this {
    this.ops.push(C);
    this.xy.push(c1x, c1y, c2x, c2y, x, y);
    return this;
  }
  close(): this {
    this.ops.push(Z);
    return this;
  }

  /** An open polyline through the points (NaN breaks the line into pieces). */
  polyline(xs: readonly number[], ys: readonly number[]): this {
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) {
        pen = false;
        continue;
      }
      if (pen) this.lineTo(xs[i], ys[i]);
      else this.moveTo(xs[i], ys[i]);
      pen = true;
    }
    return this;
  }

  rect(x: number, y: number, w: number, h: number): this {
    return this.moveTo(x, y).lineTo(x + w, y).lineTo(x + w, y + h).lineTo(x, y + h).close();
  }

  circle(cx: number, cy: number, r: number): this {
    const k = KAPPA * r;
    return this.moveTo(cx + r, cy)
      .cubicTo(cx + r, cy + k, cx + k, cy + r, cx, cy + r)
      .cubicTo(cx - k, cy + r, cx - r, cy + k, cx - r, cy)
      .cubicTo(cx - r, cy - k, cx - k, cy - r, cx, cy - r)
      .cubicTo(cx + k, cy - r, cx + r, cy - k, cx + r, cy)
      .close();
  }

  /** A closed polygon through the points. */
  polygon(pts: readonly (readonly [number, number])[]): this {
    pts.forEach(([x, y], i) => (i === 0 ? this.moveTo(x, y) : this.lineTo(x, y)));
    return this.close();
  }

  /** Appends another path's commands, each point mapped through f. */
  append(p: Path, f: (x: number, y: number) => [number, number] = (x, y) => [x, y]): this {
    let j = 0;
    for (const op of p.ops) {
      this.ops.push(op);
      for (let k = 0; k < ARITY[op]; k += 2) {
        const [x, y] = f(p.xy[j + k], p.xy[j + k + 1]);
        this.xy.push(x, y);
      }
      j += ARITY[op];
    }
    return this;
  }

  get empty(): boolean {
    return this.ops.length === 0;
  }

  /** SVG path data, coordinates rounded to 1/100 point. */
  toSvgData(): string {
    const out: string[] = [];
    let j = 0;
    const f = (v: number) => String(Math.round(v * 100) / 100);
    for (const op of this.ops) {
      const n = ARITY[op];
      out.push(LETTER[op] + this.xy.slice(j, j + n).map(f).join(" "));
      j += n;
    }
    return out.join("");
  }

  /**
   * Flattens to polylines in pixels (points times `scale`); curves are cut so that no chord
   * strays more than `tol` pixels from the curve. Each subpath is one polyline [x0,y0,x1,y1,...];
   * `closed` says whether it ended with Z.
   */
  flatten(scale: number, tol = 0.1): { pts: number[]; closed: boolean }[] {
    const out: { pts: number[]; closed: boolean }[] = [];
    let cur: number[] | null = null;
    let sx = 0;
    let sy = 0;
    let x = 0;
    let y = 0;
    let j = 0;
    const p = (k: number) => this.xy[j + k] * scale;
    const finish = (closed: boolean) => {
      if (cur && cur.length >= 4) out.push({ pts: cur, closed });
      cur = null;
    };
    for (const op of this.ops) {
      if (op === M) {
        finish(false);
        x = sx = p(0);
        y = sy = p(1);
        cur = [x, y];
      } else if (op === Z) {
        finish(true);
        x = sx;
        y = sy;
      } else {
        if (!cur) cur = [x, y];
        if (op === L) {
          x = p(0);
          y = p(1);
          cur.push(x, y);
        } else if (op === Q) {
          const [cx, cy, ex, ey] = [p(0), p(1), p(2), p(3)];
          const dev = Math.hypot(x - 2 * cx + ex, y - 2 * cy + ey) / 4;
          const n = Math.min(64, Math.max(1, Math.ceil(Math.sqrt(dev / tol))));
          for (let i = 1; i <= n; i++) {
            const t = i / n;
            const u = 1 - t;
            cur.push(u * u * x + 2 * u * t * cx + t * t * ex, u * u * y + 2 * u * t * cy + t * t * ey);
          }
          x = ex;
          y = ey;
        } else {
          const [ax, ay, bx, by, ex, ey] = [p(0), p(1), p(2), p(3), p(4), p(5)];
          const dev = (0.75 * Math.max(Math.hypot(x - 2 * ax + bx, y - 2 * ay + by), Math.hypot(ax - 2 * bx + ex, ay - 2 * by + ey)));
          const n = Math.min(64, Math.max(1, Math.ceil(Math.sqrt(dev / tol))));
          for (let i = 1; i <= n; i++) {
            const t = i / n;
            const u = 1 - t;
            const a = u * u * u;
            const b = 3 * u * u * t;
            const c = 3 * u * t * t;
            const d = t * t * t;
            cur.push(a * x + b * ax + c * bx + d * ex, a * y + b * ay + c * by + d * ey);
          }
          x = ex;
          y = ey;
        }
      }
      j += ARITY[op];
    }
    finish(false);
    return out;
  }
}

/** Parses the path data the font generator writes (absolute M, L, Q, C, Z; numbers separated by spaces). */
export function parsePathData(d: string): Path {
  const p = new Path();
  const re = /([MLQCZ])([^MLQCZ]*)/g;
  for (const m of d.matchAll(re)) {
    const v = m[2].trim() ? m[2].trim().split(/[\s,]+/).map(Number) : [];
    switch (m[1]) {
      case "M":
        p.moveTo(v[0], v[1]);
        break;
      case "L":
        p.lineTo(v[0], v[1]);
        break;
      case "Q":
        p.quadTo(v[0], v[1], v[2], v[3]);
        break;
      case "C":
        p.cubicTo(v[0], v[1], v[2], v[3], v[4], v[5]);
        break;
      default:
        p.close();
    }
  }
  return p;
}
