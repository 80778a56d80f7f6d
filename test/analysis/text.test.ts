// Text in the figures is drawn from embedded glyph outlines (src/analysis/font.ts), so it needs no
// font on the machine: checked by rendering in a child process whose fontconfig sees no fonts at all
// (the way a fresh Debian image is), where sharp's own <text> turns into boxes but our figures stay
// byte-identical.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headsFigure } from "../../src/analysis/figures_training.ts";
import { canSpell, measureText, textPath } from "../../src/analysis/font.ts";
import { decodePng } from "../../src/analysis/raster.ts";
import { Figure } from "../../src/analysis/svg.ts";

function meanAbs(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** dark pixels (every channel < 128) in a rectangle of an RGB image */
function darkIn(img: { width: number; data: Uint8Array }, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
    const i = (y * img.width + x) * 3;
    if (img.data[i] < 128 && img.data[i + 1] < 128 && img.data[i + 2] < 128) n++;
  }
  return n;
}

test("measureText: proportional to the size, kerned, missing characters take a box's width", () => {
  expect(measureText("Accuracy", 20)).toBeCloseTo(2 * measureText("Accuracy", 10), 9);
  expect(measureText("AV", 10)).toBeLessThan(measureText("A", 10) + measureText("V", 10));
  expect(measureText("Ab", 10, true)).toBeGreaterThan(measureText("Ab", 10));
  expect(measureText("日", 10)).toBeCloseTo(6, 9);
  expect(canSpell("θ′ − θ, α_E ± 1")).toBe(true);
  expect(canSpell("日本")).toBe(false);
  // subscripts are smaller
  expect(measureText("W_Q", 10, false, true)).toBeLessThan(measureText("WQ", 10));
});

test("textPath places outlines by anchor, baseline and rotation", () => {
  const bbox = (d: ReturnType<typeof textPath>) => {
    const xs = d.xy.filter((_, i) => i % 2 === 0);
    const ys = d.xy.filter((_, i) => i % 2 === 1);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  };
  const w = measureText("HEH", 10);
  const [x0, y0, x1, y1] = bbox(textPath("HEH", 100, 50, { size: 10 }));
  expect(x0).toBeGreaterThan(100);
  expect(x1).toBeLessThan(100 + w);
  expect(y1).toBeCloseTo(50, 6); // capitals sit on the baseline
  expect(y0).toBeCloseTo(50 - 7.29, 1); // cap height of DejaVu Sans
  const mid = bbox(textPath("HEH", 100, 50, { size: 10, anchor: "middle", baseline: "middle" }));
  expect((mid[0] + mid[2]) / 2).toBeCloseTo(100, 0);
  expect((mid[1] + mid[3]) / 2).toBeCloseTo(50, 1);
  const up = bbox(textPath("HEH", 100, 50, { size: 10, rotate: -90 }));
  expect(up[2]).toBeCloseTo(100, 6); // reads bottom to top, baseline on x = 100
  expect(up[3]).toBeLessThan(50);
  expect(up[1]).toBeGreaterThan(50 - w);
});

test("the figures' SVG has no <text> and names no font", () => {
  const steps = [1, 2, 3];
  const fig = headsFigure([{ label: "a", steps, inductionHeads: [1, 2, 3] }]);
  expect(fig.svg).not.toContain("<text");
  expect(fig.svg).not.toContain("font");
});

test("glyph pixels exist where a label is, and nowhere beside it", () => {
  const f = new Figure(100, 30);
  f.text("Label", 10, 20, { size: 12 });
  const img = decodePng(f.toPng(4));
  const w = measureText("Label", 12);
  // 1 in 4 pixels of the text's box is ink; the box to its right is blank
  expect(darkIn(img, 40, 4 * 11, Math.floor(4 * (10 + w)), 80)).toBeGreaterThan(0.15 * 4 * w * 4 * 9);
  expect(darkIn(img, Math.ceil(4 * (10 + w)) + 4, 0, 400, 120)).toBe(0);
  expect(darkIn(img, 0, 0, 36, 120)).toBe(0);
});

test("with every font hidden, figures render byte-identically; sharp's own <text> does not", () => {
  const dir = mkdtempSync(join(tmpdir(), "abft-nofonts-"));
  try {
    // a valid fontconfig file whose only font directory is empty: fontconfig finds no font
    mkdirSync(join(dir, "none"));
    const conf = join(dir, "fonts.conf");
    writeFileSync(
      conf,
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${join(dir, "none")}</dir><cachedir>${join(dir, "cache")}</cachedir></fontconfig>\n`,
    );
    const run = (sub: string, env: Record<string, string>) => {
      mkdirSync(join(dir, sub));
      const p = Bun.spawnSync(["bun", join(import.meta.dir, "render_worker.ts"), join(dir, sub)], { env: { ...process.env, ...env }, stderr: "pipe" });
      expect(p.exitCode).toBe(0);
      const read = (f: string) => new Uint8Array(readFileSync(join(dir, sub, f)));
      return { builtin: read("builtin.rgb"), sharp: read("sharp.rgb"), paths: read("word_paths.rgb"), text: read("word_text.rgb") };
    };
    const normal = run("normal", {});
    const hidden = run("hidden", { FONTCONFIG_FILE: conf });
    // the premise: with the fonts hidden, sharp draws <text> as boxes, far from our glyphs
    expect(meanAbs(hidden.text, hidden.paths)).toBeGreaterThan(3);
    // our figure: identical with and without fonts, through our rasteriser and through sharp
    expect(Buffer.compare(Buffer.from(hidden.builtin), Buffer.from(normal.builtin))).toBe(0);
    expect(Buffer.compare(Buffer.from(hidden.sharp), Buffer.from(normal.sharp))).toBe(0);
    // and the two rasterisers agree (anti-aliasing differs by a level here and there)
    expect(meanAbs(hidden.sharp, hidden.builtin)).toBeLessThan(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
