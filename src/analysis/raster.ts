// A small anti-aliased rasteriser and PNG encoder, so that figures become PNG files with nothing
// native: sharp (libvips) cannot be carried inside the compiled single binary (its .node addon
// loads libvips-cpp.so from node_modules), so the binary draws its figures with this instead.
//
// Filling: every polygon edge adds its signed area to an accumulation row per pixel row; a running
// sum along the row gives each pixel's coverage (exact area coverage, so edges are anti-aliased
// without supersampling). Coverage is |winding| clamped to 1: the nonzero rule for shapes that
// overlap with the same orientation (strokes) and holes drawn the other way round (glyphs).
// Strokes are turned into polygons first: one rectangle per segment, a disc at each join (round
// joins) and, with round caps, at the ends; dashes cut the polyline before that.
// The canvas is RGB in [0, 1] on an opaque background; colours are composited with source-over.
import { deflateSync, inflateSync } from "node:zlib";

export type Rgb = [number, number, number];

export class Canvas {
  readonly rgb: Float32Array;
  private acc = new Float32Array(0);

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [1, 1, 1],
  ) {
    this.rgb = new Float32Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.rgb.set(background, 3 * i);
  }

  /** Fills closed polygons (pixel coordinates, [x0,y0,x1,y1,...]) with colour and opacity. */
  fill(polys: readonly number[][], color: Rgb, alpha = 1): void {
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const p of polys) {
      for (let i = 0; i < p.length; i += 2) {
        minX = Math.min(minX, p[i]);
        maxX = Math.max(maxX, p[i]);
        minY = Math.min(minY, p[i + 1]);
        maxY = Math.max(maxY, p[i + 1]);
      }
    }
    const x0 = Math.max(0, Math.floor(minX));
    const y0 = Math.max(0, Math.floor(minY));
    const x1 = Math.min(this.width, Math.ceil(maxX) + 1);
    const y1 = Math.min(this.height, Math.ceil(maxY));
    if (x1 <= x0 || y1 <= y0) return;
    const bw = x1 - x0;
    const bh = y1 - y0;
    const stride = bw + 1;
    if (this.acc.length < stride * bh) this.acc = new Float32Array(stride * bh);
    const acc = this.acc;
    acc.fill(0, 0, stride * bh);
    for (const p of polys) {
      const n = p.length / 2;
      for (let i = 0; i < n; i++) {
        const j = (i + 1) % n;
        addEdge(acc, stride, bw, bh, p[2 * i] - x0, p[2 * i + 1] - y0, p[2 * j] - x0, p[2 * j + 1] - y0);
      }
    }
    const [r, g, b] = color;
    for (let row = 0; row < bh; row++) {
      let sum = 0;
      const base = row * stride;
      let px = ((y0 + row) * this.width + x0) * 3;
      for (let c = 0; c < bw; c++, px += 3) {
        sum += acc[base + c];
        const cov = Math.min(1, Math.abs(sum)) * alpha;
        if (cov <= 1e-4) continue;
        const k = 1 - cov;
        this.rgb[px] = this.rgb[px] * k + r * cov;
        this.rgb[px + 1] = this.rgb[px + 1] * k + g * cov;
        this.rgb[px + 2] = this.rgb[px + 2] * k + b * cov;
      }
    }
  }

  /** Paints whole pixels: the rectangle's edges are rounded to the pixel grid (no seams between cells). */
  fillCrisp(x: number, y: number, w: number, h: number, color: Rgb, alpha = 1): void {
    const xa = Math.max(0, Math.round(x));
    const xb = Math.min(this.width, Math.round(x + w));
    const ya = Math.max(0, Math.round(y));
    const yb = Math.min(this.height, Math.round(y + h));
    const k = 1 - alpha;
    for (let yy = ya; yy < yb; yy++) {
      for (let xx = xa; xx < xb; xx++) {
        const px = (yy * this.width + xx) * 3;
        for (let c = 0; c < 3; c++) this.rgb[px + c] = this.rgb[px + c] * k + color[c] * alpha;
      }
    }
  }

  /** Draws an RGB image (rows of `cols` pixels, bytes) scaled into a rectangle, nearest pixel. */
  drawImage(x: number, y: number, w: number, h: number, cols: number, rows: number, data: Uint8Array): void {
    const xa = Math.max(0, Math.round(x));
    const xb = Math.min(this.width, Math.round(x + w));
    const ya = Math.max(0, Math.round(y));
    const yb = Math.min(this.height, Math.round(y + h));
    for (let yy = ya; yy < yb; yy++) {
      const sr = Math.min(rows - 1, Math.max(0, Math.floor(((yy + 0.5 - y) / h) * rows)));
      for (let xx = xa; xx < xb; xx++) {
        const sc = Math.min(cols - 1, Math.max(0, Math.floor(((xx + 0.5 - x) / w) * cols)));
        const s = (sr * cols + sc) * 3;
        const px = (yy * this.width + xx) * 3;
        for (let c = 0; c < 3; c++) this.rgb[px + c] = data[s + c] / 255;
      }
    }
  }

  /** 8-bit RGB bytes, row by row. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.rgb.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, this.rgb[i])) * 255);
    return out;
  }
}

// Adds the signed area of edge (ax, ay) -> (bx, by) to the accumulation rows. A piece of the edge
// inside pixel column c of a row, of signed height d, at mean horizontal position c + f, covers
// d * (1 - f) of pixel c and all of every pixel right of it: acc[c] += d (1 - f), acc[c+1] += d f,
// and the running sum along the row adds those up. Left of column 0 counts as column 0, right of
// the box is dropped (the running sum restarts on every row).
function addEdge(acc: Float32Array, stride: number, bw: number, bh: number, ax: number, ay: number, bx: number, by: number): void {
  if (ay === by) return;
  let sign = 1;
  if (ay > by) {
    [ax, ay, bx, by] = [bx, by, ax, ay];
    sign = -1;
  }
  const dxdy = (bx - ax) / (by - ay);
  const r0 = Math.max(0, Math.floor(ay));
  const r1 = Math.min(bh, Math.ceil(by));
  for (let row = r0; row < r1; row++) {
    const ya = Math.max(ay, row);
    const yb = Math.min(by, row + 1);
    if (yb <= ya) continue;
    const d = (yb - ya) * sign;
    const xa = ax + (ya - ay) * dxdy;
    const xb = ax + (yb - ay) * dxdy;
    const base = row * stride;
    const lo = Math.min(xa, xb);
    const hi = Math.max(xa, xb);
    const add = (c: number, f: number, h: number) => {
      acc[base + c] += h * (1 - f);
      acc[base + c + 1] += h * f;
    };
    if (hi - lo < 1e-9) {
      if (lo < 0) acc[base] += d;
      else if (lo < bw) add(Math.floor(lo), lo - Math.floor(lo), d);
      continue;
    }
    const span = hi - lo;
    // the part left of the box: full coverage from column 0
    if (lo < 0) acc[base] += (d * (Math.min(hi, 0) - lo)) / span;
    let x = Math.max(lo, 0);
    const end = Math.min(hi, bw);
    while (x < end) {
      const c = Math.floor(x);
      const nx = Math.min(end, c + 1);
      add(c, (x + nx) / 2 - c, (d * (nx - x)) / span);
      x = nx;
    }
  }
}

/** A closed polygon oriented with positive area (so strokes' pieces add up instead of cancelling). */
function oriented(p: number[]): number[] {
  let a = 0;
  for (let i = 0; i < p.length; i += 2) {
    const j = (i + 2) % p.length;
    a += p[i] * p[j + 1] - p[j] * p[i + 1];
  }
  if (a >= 0) return p;
  const out: number[] = [];
  for (let i = p.length - 2; i >= 0; i -= 2) out.push(p[i], p[i + 1]);
  return out;
}

function disc(cx: number, cy: number, r: number): number[] {
  const n = Math.max(8, Math.min(64, Math.ceil(Math.PI * r)));
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(cx + r * Math.cos((2 * Math.PI * i) / n), cy + r * Math.sin((2 * Math.PI * i) / n));
  return out;
}

/** Cuts a polyline into dashes: pattern [on, off, on, off, ...] in pixels. */
export function dashPolyline(pts: number[], pattern: readonly number[]): number[][] {
  const out: number[][] = [];
  let k = 0;
  let left = pattern[0];
  let on = true;
  let cur: number[] | null = [pts[0], pts[1]];
  for (let i = 2; i < pts.length; i += 2) {
    let x = pts[i - 2];
    let y = pts[i - 1];
    const ex = pts[i];
    const ey = pts[i + 1];
    let seg = Math.hypot(ex - x, ey - y);
    while (seg > 0) {
      const step = Math.min(seg, left);
      const t = step / seg;
      x += (ex - x) * t;
      y += (ey - y) * t;
      seg -= step;
      left -= step;
      if (on && cur) cur.push(x, y);
      if (left <= 1e-9) {
        if (on && cur && cur.length >= 4) out.push(cur);
        on = !on;
        k = (k + 1) % pattern.length;
        left = pattern[k];
        cur = on ? [x, y] : null;
      }
    }
  }
  if (on && cur && cur.length >= 4) out.push(cur);
  return out;
}

/** The polygons covering a stroke of the given width along a polyline (pixels). */
export function strokePolygons(pts: number[], closed: boolean, width: number, roundCaps: boolean): number[][] {
  const h = width / 2;
  const polys: number[][] = [];
  const n = pts.length / 2;
  const last = closed ? n : n - 1;
  for (let i = 0; i < last; i++) {
    const j = (i + 1) % n;
    const [ax, ay, bx, by] = [pts[2 * i], pts[2 * i + 1], pts[2 * j], pts[2 * j + 1]];
    const len = Math.hypot(bx - ax, by - ay);
    if (len < 1e-9) continue;
    const nx = (-(by - ay) / len) * h;
    const ny = ((bx - ax) / len) * h;
    polys.push(oriented([ax + nx, ay + ny, bx + nx, by + ny, bx - nx, by - ny, ax - nx, ay - ny]));
  }
  // joins (and round caps): discs at the vertices; thin lines need none
  if (width > 1.5) {
    for (let i = 0; i < n; i++) {
      const end = !closed && (i === 0 || i === n - 1);
      if (end && !roundCaps) continue;
      polys.push(oriented(disc(pts[2 * i], pts[2 * i + 1], h)));
    }
  }
  return polys;
}

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * An 8-bit RGB PNG. Each row takes the filter (none, sub, up, average, Paeth) whose output has the
 * smallest sum of absolute values (the usual heuristic); `dpi` goes into pHYs so that the image has
 * its intended printed size.
 */
export function encodePng(width: number, height: number, rgb: Uint8Array, dpi?: number): Buffer {
  const bpp = 3;
  const stride = width * bpp;
  const raw = new Uint8Array((stride + 1) * height);
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rgb.subarray((y - 1) * stride, y * stride) : null;
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < 5; f++) {
      const out = cand[f];
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const b = prev ? prev[i] : 0;
        const c = prev && i >= bpp ? prev[i - bpp] : 0;
        let pred = 0;
        if (f === 1) pred = a;
        else if (f === 2) pred = b;
        else if (f === 3) pred = (a + b) >> 1;
        else if (f === 4) {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
        const v = (row[i] - pred) & 0xff;
        out[i] = v;
        cost += v < 128 ? v : 256 - v;
      }
      if (cost < bestCost) (bestCost = cost), (best = f);
    }
    raw[y * (stride + 1)] = best;
    raw.set(cand[best], y * (stride + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB, deflate, adaptive filters, no interlace
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr)];
  if (dpi) {
    const phys = new Uint8Array(9);
    const pv = new DataView(phys.buffer);
    const ppm = Math.round(dpi / 0.0254);
    pv.setUint32(0, ppm);
    pv.setUint32(4, ppm);
    phys[8] = 1; // metres
    parts.push(chunk("pHYs", phys));
  }
  parts.push(chunk("IDAT", deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0)));
  return Buffer.concat(parts);
}

/** Reads back an 8-bit RGB or RGBA PNG that encodePng (or another non-interlaced encoder) wrote: for tests. */
export function decodePng(png: Uint8Array): { width: number; height: number; channels: number; data: Uint8Array } {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let p = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  while (p < png.length) {
    const len = v.getUint32(p);
    const type = String.fromCharCode(...png.subarray(p + 4, p + 8));
    const data = png.subarray(p + 8, p + 8 + len);
    if (type === "IHDR") {
      width = v.getUint32(p + 8);
      height = v.getUint32(p + 12);
      if (data[8] !== 8 || data[12] !== 0) throw new Error("decodePng reads 8-bit non-interlaced PNGs only");
      channels = data[9] === 2 ? 3 : data[9] === 6 ? 4 : 0;
      if (!channels) throw new Error(`decodePng: colour type ${data[9]} not supported`);
    } else if (type === "IDAT") idat.push(data);
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i >= channels ? out[y * stride + i - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= channels ? out[(y - 1) * stride + i - channels] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const q = a + b - c;
        const pa = Math.abs(q - a);
        const pb = Math.abs(q - b);
        const pc = Math.abs(q - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}
