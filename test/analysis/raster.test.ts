// The PNG rasteriser of the figures (src/analysis/raster.ts): exact area coverage, the nonzero
// rule, strokes and dashes, and PNG files that other decoders (sharp) read back bit for bit.
import { expect, test } from "bun:test";
import sharp from "sharp";
import { Canvas, dashPolyline, decodePng, encodePng, strokePolygons } from "../../src/analysis/raster.ts";
import { testRng } from "../helpers.ts";

/** coverage of each pixel after filling black on white: 1 - value */
function coverage(c: Canvas): Float64Array {
  const out = new Float64Array(c.width * c.height);
  for (let i = 0; i < out.length; i++) out[i] = 1 - c.rgb[3 * i];
  return out;
}

const sum = (a: Float64Array) => a.reduce((s, x) => s + x, 0);

test("a rectangle with fractional edges covers each pixel by its exact area", () => {
  const c = new Canvas(32, 16);
  c.fill([[10.25, 5.5, 20.75, 5.5, 20.75, 9.5, 10.25, 9.5]], [0, 0, 0]);
  const cov = coverage(c);
  const at = (x: number, y: number) => cov[y * 32 + x];
  expect(at(15, 7)).toBeCloseTo(1, 6);
  expect(at(10, 7)).toBeCloseTo(0.75, 6);
  expect(at(20, 7)).toBeCloseTo(0.75, 6);
  expect(at(15, 5)).toBeCloseTo(0.5, 6);
  expect(at(10, 5)).toBeCloseTo(0.375, 6);
  expect(at(9, 7)).toBe(0);
  expect(at(21, 7)).toBe(0);
  expect(sum(cov)).toBeCloseTo(10.5 * 4, 4);
});

test("random triangles: total coverage equals the area, also when clipped by the canvas", () => {
  const rng = testRng("raster triangles");
  for (let k = 0; k < 20; k++) {
    const p = Array.from({ length: 6 }, () => rng.next() * 60 - 10); // partly outside [0, 40)
    const c = new Canvas(40, 40);
    c.fill([p], [0, 0, 0]);
    // reference: the exact area of the triangle clipped to the canvas (Sutherland-Hodgman, shoelace);
    // supersampling is not exact enough for thin triangles with long edges
    let poly: [number, number][] = [[p[0], p[1]], [p[2], p[3]], [p[4], p[5]]];
    const clip = (inside: (q: [number, number]) => boolean, cut: (a: [number, number], b: [number, number]) => [number, number]) => {
      const out: [number, number][] = [];
      poly.forEach((cur, i) => {
        const prev = poly[(i + poly.length - 1) % poly.length];
        if (inside(cur)) {
          if (!inside(prev)) out.push(cut(prev, cur));
          out.push(cur);
        } else if (inside(prev)) out.push(cut(prev, cur));
      });
      poly = out;
    };
    const atX = (x: number) => (a: [number, number], b: [number, number]): [number, number] => [x, a[1] + ((b[1] - a[1]) * (x - a[0])) / (b[0] - a[0])];
    const atY = (y: number) => (a: [number, number], b: [number, number]): [number, number] => [a[0] + ((b[0] - a[0]) * (y - a[1])) / (b[1] - a[1]), y];
    clip((q) => q[0] >= 0, atX(0));
    clip((q) => q[0] <= 40, atX(40));
    clip((q) => q[1] >= 0, atY(0));
    clip((q) => q[1] <= 40, atY(40));
    let twice = 0;
    poly.forEach((a, i) => {
      const b = poly[(i + 1) % poly.length];
      twice += a[0] * b[1] - b[0] * a[1];
    });
    const ref = Math.abs(twice) / 2;
    expect(Math.abs(sum(coverage(c)) - ref)).toBeLessThan(1e-5 * Math.max(ref, 1) + 1e-4); // f32 coverage sums
  }
});

test("nonzero: a hole drawn the other way round stays empty; overlaps of the same orientation do not darken", () => {
  const c = new Canvas(20, 20);
  const outer = [2, 2, 18, 2, 18, 18, 2, 18];
  const hole = [6, 6, 6, 14, 14, 14, 14, 6];
  c.fill([outer, hole], [0, 0, 0]);
  const cov = coverage(c);
  expect(cov[10 * 20 + 10]).toBe(0);
  expect(cov[3 * 20 + 3]).toBeCloseTo(1, 6);
  expect(sum(cov)).toBeCloseTo(16 * 16 - 8 * 8, 4);
  const d = new Canvas(20, 20);
  d.fill([[2, 2, 12, 2, 12, 12, 2, 12], [6, 6, 16, 6, 16, 16, 6, 16]], [0, 0, 0]);
  expect(sum(coverage(d))).toBeCloseTo(100 + 100 - 36, 4);
});

test("a stroke covers its width; dashes cut it into on/off pieces", () => {
  const c = new Canvas(40, 20);
  c.fill(strokePolygons([5, 10, 35, 10], false, 2, false), [0, 0, 0]);
  const cov = coverage(c);
  expect(cov[9 * 40 + 20]).toBeCloseTo(1, 6);
  expect(cov[10 * 40 + 20]).toBeCloseTo(1, 6);
  expect(cov[8 * 40 + 20]).toBe(0);
  expect(sum(cov)).toBeCloseTo(30 * 2, 3);
  const dashes = dashPolyline([0, 0, 10, 0, 10, 10], [3, 2]);
  // 20 px of path: on 0-3, 5-8, 10-13 (round the corner), 15-18
  expect(dashes.length).toBe(4);
  expect(dashes[2]).toEqual([10, 0, 10, 3]);
});

test("PNG: what encodePng writes, decodePng and sharp read back exactly", async () => {
  const rng = testRng("png round trip");
  const [w, h] = [37, 23];
  const rgb = new Uint8Array(w * h * 3);
  // smooth gradients (exercise the sub/up/Paeth filters) plus noise
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++) rgb[(y * w + x) * 3 + k] = (x * 5 + y * 3 * k + Math.floor(rng.next() * 8)) & 255;
  const png = encodePng(w, h, rgb, 288);
  const back = decodePng(png);
  expect([back.width, back.height, back.channels]).toEqual([w, h, 3]);
  expect(Buffer.compare(Buffer.from(back.data), Buffer.from(rgb))).toBe(0);
  const viaSharp = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect([viaSharp.info.width, viaSharp.info.height, viaSharp.info.channels]).toEqual([w, h, 3]);
  expect(Buffer.compare(viaSharp.data, Buffer.from(rgb))).toBe(0);
  expect(Math.round((await sharp(png).metadata()).density ?? 0)).toBe(288);
});
