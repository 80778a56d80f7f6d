// Every figure kind from synthetic data: a PNG of the expected size that is not blank, the same
// picture when sharp rasterises the figure's SVG, CSV and JSON holding the input data, and clear
// one-line errors for bad input.
import { describe, expect, test } from "bun:test";
import sharp from "sharp";
import { PlotInputError, type FigureOutput } from "../../src/analysis/figures.ts";
import { contourFigure, dataEfficiencyFigure, sensitivityFigure } from "../../src/analysis/figures_accuracy.ts";
import { attentionFigure, displayToken } from "../../src/analysis/figures_attention.ts";
import { headsFigure, layersFigure, shiftFigure } from "../../src/analysis/figures_training.ts";
import { parseCsvText } from "../../src/analysis/run_figures.ts";
import { decodePng } from "../../src/analysis/raster.ts";
import { testRng } from "../helpers.ts";

const rng = testRng("figures");

interface Stats {
  width: number;
  height: number;
  /** share of pixels that are not white */
  ink: number;
  colours: number;
}

function stats(png: Buffer): Stats {
  const img = decodePng(png);
  let ink = 0;
  const colours = new Set<number>();
  for (let i = 0; i < img.data.length; i += 3) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    if (r < 250 || g < 250 || b < 250) ink++;
    colours.add((r << 16) | (g << 8) | b);
  }
  return { width: img.width, height: img.height, ink: ink / (img.width * img.height), colours: colours.size };
}

/** size as promised, neither blank nor a flood of colour, and sharp draws the SVG the same */
async function checkPicture(f: FigureOutput, w: number, h: number): Promise<Stats> {
  const s = stats(f.png);
  expect([s.width, s.height]).toEqual([f.width, f.height]);
  expect([f.width, f.height]).toEqual([w, h]);
  expect(s.ink).toBeGreaterThan(0.03);
  expect(s.ink).toBeLessThan(0.9);
  expect(s.colours).toBeGreaterThan(20);
  // the SVG is the same figure: sharp (librsvg) at 4 px/pt (density 144: sharp scales vector input by (density/72)^2)
  const other = await sharp(Buffer.from(f.svg), { density: 144 }).flatten({ background: "#ffffff" }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([other.info.width, other.info.height]).toEqual([w, h]);
  const ours = decodePng(f.png).data;
  let diff = 0;
  for (let i = 0; i < ours.length; i++) diff += Math.abs(ours[i] - other.data[i]);
  expect(diff / ours.length).toBeLessThan(3);
  return s;
}

function csvRows(f: FigureOutput): string[][] {
  return parseCsvText(f.csv);
}

function expectOneLineError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PlotInputError);
  const msg = (err as Error).message;
  expect(msg).toMatch(pattern);
  expect(msg).not.toContain("\n");
}

const steps = Array.from({ length: 37 }, (_, i) => i + 1);
const runs = [0, 1, 2].map((k) => ({
  label: `run ${k}`,
  steps,
  inductionHeads: steps.map(() => 5 + k * 4 + rng.normal()),
  samplesPerStep: 16,
}));

describe("heads", () => {
  test("one line per run, default 245 x 180 pt at 4 px/pt; CSV and JSON hold every point", async () => {
    const f = headsFigure(runs);
    await checkPicture(f, 980, 720);
    const rows = csvRows(f);
    expect(rows[0]).toEqual(["run", "step", "samples", "induction_heads"]);
    expect(rows.length).toBe(1 + 3 * 37);
    expect(rows[1 + 37 + 5]).toEqual(["run 1", "6", "96", String(runs[1].inductionHeads[5])]);
    expect((f.json.runs as { inductionHeads: number[] }[])[2].inductionHeads).toEqual(runs[2].inductionHeads);
    // every run's colour appears in the picture
    const img = decodePng(f.png).data;
    for (const hex of ["1f77b4", "ff7f0e", "2ca02c"]) {
      const c = parseInt(hex, 16);
      let n = 0;
      for (let i = 0; i < img.length; i += 3) if (((img[i] << 16) | (img[i + 1] << 8) | img[i + 2]) === c) n++;
      expect(n).toBeGreaterThan(100);
    }
  });

  test("x as samples seen; --scale changes the pixel size only", async () => {
    const f = headsFigure(runs, { x: "samples", scale: 2 });
    expect([f.width, f.height]).toEqual([490, 360]);
    expect(f.json.x).toBe("samples");
    expectOneLineError(() => headsFigure([{ label: "r", steps: [1], inductionHeads: [1] }], { x: "samples" }), /does not say how many samples/);
  });

  test("bad input", () => {
    expectOneLineError(() => headsFigure([]), /no runs/);
    expectOneLineError(() => headsFigure([{ label: "r", steps: [], inductionHeads: [] }]), /r has no steps/);
    expectOneLineError(() => headsFigure([{ label: "r", steps: [1, 2], inductionHeads: [1] }]), /2 steps but 1/);
    expectOneLineError(() => headsFigure([{ label: "r", steps: [1, 2], inductionHeads: [1, NaN] }]), /value 1 is NaN, not a finite number/);
  });
});

const L = 13;
const layerIds = Array.from({ length: L }, (_, l) => l);
const stat = (f: number) => ({ induction: layerIds.map(() => f * rng.next()), correct: layerIds.map(() => 0.5 * f * rng.next()) });

describe("layers", () => {
  test("before and after, and either alone", async () => {
    const d = { layers: layerIds, before: stat(0.5), after: stat(0.9) };
    const f = layersFigure(d);
    await checkPicture(f, 980, 720);
    const rows = csvRows(f);
    expect(rows[0]).toEqual(["layer", "induction_before", "correct_before", "induction_after", "correct_after"]);
    expect(rows[4].map(Number)).toEqual([3, d.before.induction[3], d.before.correct[3], d.after.induction[3], d.after.correct[3]]);
    expect(f.json.after).toEqual(d.after);
    const onlyAfter = layersFigure({ layers: layerIds, after: d.after });
    await checkPicture(onlyAfter, 980, 720);
    expect(csvRows(onlyAfter)[1][1]).toBe("");
  });

  test("bad input", () => {
    expectOneLineError(() => layersFigure({ layers: [] }), /no layers/);
    expectOneLineError(() => layersFigure({ layers: layerIds }), /neither before nor after/);
    expectOneLineError(() => layersFigure({ layers: [0, 1], before: { induction: [1], correct: [1, 2] } }), /1\/2 values for 2 layers/);
  });
});

describe("shift", () => {
  test("grouped bars of W_Q and W_K per layer", async () => {
    const d = { layers: layerIds, q: layerIds.map(() => rng.next()), k: layerIds.map(() => rng.next()) };
    const f = shiftFigure(d);
    await checkPicture(f, 980, 720);
    expect(csvRows(f).slice(1).map((r) => r.map(Number))).toEqual(layerIds.map((l) => [l, d.q[l], d.k[l]]));
    expect(f.json).toMatchObject({ figure: "shift", q: d.q, k: d.k });
    expectOneLineError(() => shiftFigure({ layers: [0], q: [1, 2], k: [1] }), /2 W_Q and 1 W_K values for 1 layers/);
  });
});

describe("attention", () => {
  const tokens = ["Review", ":", " great", "\n", "Sentiment", ":", " positive", "\n", "Review", ":", " bad", " film", "\n", "Sentiment", ":", " negative", ",", '"q"', "日本", "Ġtoken"];
  const NH = 7;
  const attention = Array.from({ length: NH }, () => tokens.map(() => rng.next()));
  const d = { tokens, attention, labelPositions: [6, 15], correctPositions: [15], layer: 5 };

  test("heads x tokens heatmap, correct label in red, tokens and positions in the CSV", async () => {
    const f = attentionFigure(d);
    const s = await checkPicture(f, f.width, f.height);
    expect(s.width).toBeGreaterThanOrEqual(980);
    // red (the correct label's text and the dotted label lines) is drawn
    const img = decodePng(f.png).data;
    let red = 0;
    for (let i = 0; i < img.length; i += 3) if (img[i] > 180 && img[i + 1] < 80 && img[i + 2] < 80) red++;
    expect(red).toBeGreaterThan(200);
    const rows = csvRows(f);
    expect(rows[0]).toEqual(["position", "token", "is_label", "is_correct", ...Array.from({ length: NH }, (_, h) => `head_${h}`)]);
    expect(rows.length).toBe(1 + tokens.length);
    expect(rows[1 + 17][1]).toBe('"q"');
    expect(rows[1 + 3][1]).toBe("\n");
    expect(rows[1 + 15].slice(2, 4)).toEqual(["1", "1"]);
    expect(Number(rows[1 + 9][4 + 6])).toBe(attention[6][9]);
    expect(f.json).toMatchObject({ layer: 5, tokens, attention, label_positions: [6, 15], correct_positions: [15] });
  });

  test("more tokens widen the figure", () => {
    const many = Array.from({ length: 150 }, (_, i) => `t${i}`);
    const f = attentionFigure({ tokens: many, attention: [many.map(() => rng.next())], labelPositions: [], correctPositions: [], layer: 0 });
    expect(f.width).toBeGreaterThan(150 * 6 * 4);
  });

  test("tokens are shown with whitespace made visible", () => {
    expect(displayToken("\n")).toBe("↵");
    expect(displayToken(" ")).toBe("␣");
    expect(displayToken("Ġgood")).toBe(" good");
    expect(displayToken("▁good")).toBe(" good");
  });

  test("bad input", () => {
    expectOneLineError(() => attentionFigure({ ...d, attention: [[1, 2]] }), /head 0 has 2 values for 20 tokens/);
    expectOneLineError(() => attentionFigure({ ...d, labelPositions: [20] }), /label position 20 is outside the 20 tokens/);
    expectOneLineError(() => attentionFigure({ ...d, tokens: [], attention: [] }), /no tokens/);
  });
});

describe("sensitivity", () => {
  const rows: { A: number; B: number; pid: boolean; accuracy: number }[] = [];
  for (const pid of [false, true]) for (const A of [0.25, 0.5, 1]) for (const B of [0.5, 1, 2, 4]) for (let s = 0; s < 3; s++) rows.push({ A, B, pid, accuracy: 0.6 + 0.3 * rng.next() });

  test("two panels (without and with PID), mean and std over seeds in the CSV", async () => {
    const f = sensitivityFigure(rows);
    await checkPicture(f, f.width, f.height);
    const out = csvRows(f);
    expect(out[0]).toEqual(["pid", "A", "B", "accuracy_mean", "accuracy_std", "n"]);
    expect(out.length).toBe(1 + 2 * 3 * 4);
    const xs = rows.filter((r) => r.pid && r.A === 0.5 && r.B === 2).map((r) => r.accuracy);
    const mean = xs.reduce((a, b) => a + b) / 3;
    const cell = out.find((r) => r[0] === "true" && r[1] === "0.5" && r[2] === "2")!;
    expect(Number(cell[3])).toBeCloseTo(mean, 12);
    expect(Number(cell[4])).toBeCloseTo(Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / 2), 12);
    expect(cell[5]).toBe("3");
    expect((f.json.rows as unknown[]).length).toBe(rows.length);
  });

  test("one panel when PID was not varied; bad input", async () => {
    const f = sensitivityFigure(rows.filter((r) => r.pid).map((r) => ({ ...r, pid: null })));
    await checkPicture(f, f.width, f.height);
    expectOneLineError(() => sensitivityFigure([]), /no results/);
    expectOneLineError(() => sensitivityFigure([{ A: 1, B: 1, pid: true, accuracy: Infinity }]), /accuracy: value 0 is Infinity/);
  });
});

describe("data-efficiency", () => {
  test("ABFT vs E2E over training-set sizes (log axis), mean ± std", async () => {
    const rows: { trainSize: number; objective: string; accuracy: number }[] = [];
    for (const objective of ["e2e", "abft"]) for (const n of [16, 64, 256, 1024]) for (let s = 0; s < 2; s++) rows.push({ trainSize: n, objective, accuracy: 0.5 + 0.05 * Math.log2(n) + 0.02 * rng.next() });
    const f = dataEfficiencyFigure(rows);
    await checkPicture(f, 980, 720);
    const out = csvRows(f);
    expect(out[0]).toEqual(["objective", "train_size", "accuracy_mean", "accuracy_std", "n"]);
    expect(out.slice(1).map((r) => `${r[0]}:${r[1]}`)).toEqual(["abft:16", "abft:64", "abft:256", "abft:1024", "e2e:16", "e2e:64", "e2e:256", "e2e:1024"]);
    const xs = rows.filter((r) => r.objective === "e2e" && r.trainSize === 64).map((r) => r.accuracy);
    expect(Number(out[6][2])).toBeCloseTo((xs[0] + xs[1]) / 2, 12);
    expectOneLineError(() => dataEfficiencyFigure([{ trainSize: 0, objective: "abft", accuracy: 0.5 }]), /must be positive/);
  });
});

describe("contour", () => {
  const g = [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5];
  const acc = g.map((a) => g.map((e) => 0.5 + 0.3 * Math.exp(-((e - 0.5) ** 2 + (a - 0.5) ** 2))));

  test("filled contours with a colour bar; the peak is drawn in the top band's colour", async () => {
    const f = contourFigure({ aE: g, aA: g, accuracy: acc });
    await checkPicture(f, f.width, f.height);
    const out = csvRows(f);
    expect(out[0]).toEqual(["a_E", "a_A", "accuracy"]);
    expect(out.length).toBe(1 + 81);
    expect(out.find((r) => r[0] === "1" && r[1] === "-0.5")![2]).toBe(String(acc[0][6]));
    expect(f.json).toMatchObject({ aE: g, aA: g, accuracy: acc });
    // the top band (viridis near 1: yellow) covers the peak's neighbourhood
    const img = decodePng(f.png).data;
    let yellow = 0;
    for (let i = 0; i < img.length; i += 3) if (img[i] > 170 && img[i + 1] > 200 && img[i + 2] < 90) yellow++;
    expect(yellow).toBeGreaterThan(2000);
  });

  test("missing points are allowed; bad grids are not", async () => {
    const holes = acc.map((r, i) => r.map((v, j) => (i === 2 && j === 3 ? NaN : v)));
    const f = contourFigure({ aE: g, aA: g, accuracy: holes });
    await checkPicture(f, f.width, f.height);
    expect((f.json.accuracy as (number | null)[][])[2][3]).toBeNull();
    expectOneLineError(() => contourFigure({ aE: [0], aA: [0, 1], accuracy: [[1], [1]] }), /needs at least 2/);
    expectOneLineError(() => contourFigure({ aE: [1, 0], aA: [0, 1], accuracy: [[1, 1], [1, 1]] }), /a_E values must increase/);
    expectOneLineError(() => contourFigure({ aE: [0, 1], aA: [0, 1], accuracy: [[1, 1]] }), /2 rows \(a_A\) of 2 values/);
  });
});
