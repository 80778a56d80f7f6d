// Reading figure inputs from run directories, sweep results, grids and attention files;
// writeRunFigures; the `abft plot` command; and `abft plot` from a compiled binary copied alone to
// an empty directory with every font hidden.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { Command } from "commander";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PlotInputError } from "../../src/analysis/figures.ts";
import { headsFigure } from "../../src/analysis/figures_training.ts";
import { decodePng } from "../../src/analysis/raster.ts";
import {
  parseCsvText,
  readAttentionJson,
  readContourGrid,
  readDataEfficiencyCsv,
  readHeadsRun,
  readLayers,
  readSensitivityCsv,
  readShift,
  writeRunFigures,
} from "../../src/analysis/run_figures.ts";
import { registerPlot } from "../../src/cli/plot.ts";

const ROOT = join(import.meta.dir, "..", "..");
const TMP = mkdtempSync(join(tmpdir(), "abft-plot-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(name = "d"): string {
  const d = join(TMP, `${name}-${dirCount++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A run directory as `abft run` writes it (12 layers, `steps` steps, a torn last metrics line). */
function fakeRun(steps = 20, layers = 12): string {
  const dir = freshDir("run");
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model: "gpt2", task: "sst2", train: { objective: "abft", batch: 8 } }));
  let m = "";
  for (let s = 1; s <= steps; s++) m += JSON.stringify({ step: s, loss: 1 / s, A: 0.5, B: 1, inductionHeads: 10 + Math.sin(s), lr: 1e-5, updated: true, seconds: 0.5, samplesPerSec: 16 }) + "\n";
  writeFileSync(join(dir, "metrics.jsonl"), m + '{"step": 99, "lo');
  const stats = (f: number) => ({ layers: Array.from({ length: layers }, (_, l) => ({ layer: l, inductionAttention: f * (0.1 + 0.02 * l), correctAttention: f * 0.01 * l, inductionHeads: l % 3 })) });
  writeFileSync(join(dir, "attention_before.json"), JSON.stringify(stats(1)));
  writeFileSync(join(dir, "attention_after.json"), JSON.stringify(stats(1.5)));
  writeFileSync(join(dir, "shift.json"), JSON.stringify({ layers: Array.from({ length: layers }, (_, l) => ({ layer: l, q: 0.1 + 0.01 * l, k: 0.2 + 0.005 * l })) }));
  return dir;
}

function expectError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PlotInputError);
  expect((err as Error).message).toMatch(pattern);
  expect((err as Error).message).not.toContain("\n");
}

describe("run directories", () => {
  test("metrics.jsonl: every finished step, the torn last line dropped, batch from config.json", () => {
    const dir = fakeRun(20);
    const r = readHeadsRun(dir, "mine");
    expect(r.label).toBe("mine");
    expect(r.steps).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(r.inductionHeads[4]).toBeCloseTo(10 + Math.sin(5), 12);
    expect(r.samplesPerStep).toBe(8);
    expect(readHeadsRun(dir).label).toBe(dir.split("/").pop()!);
  });

  test("attention statistics and shift", () => {
    const dir = fakeRun(3, 5);
    const l = readLayers(dir);
    expect(l.layers).toEqual([0, 1, 2, 3, 4]);
    expect(l.after!.induction[2]).toBeCloseTo(1.5 * 0.14, 12);
    rmSync(join(dir, "attention_before.json"));
    expect(readLayers(dir).before).toBeUndefined();
    expect(readShift(dir).k).toEqual([0, 1, 2, 3, 4].map((l) => 0.2 + 0.005 * l));
  });

  test("bad run directories are one-line errors naming the file", () => {
    expectError(() => readHeadsRun(join(TMP, "nope")), /run directory .*nope does not exist/);
    const empty = freshDir("empty");
    expectError(() => readHeadsRun(empty), /metrics.jsonl does not exist/);
    writeFileSync(join(empty, "metrics.jsonl"), "");
    expectError(() => readHeadsRun(empty), /metrics.jsonl has no steps yet/);
    writeFileSync(join(empty, "metrics.jsonl"), '{"step": 1, "inductionHeads": 3}\nnot json\n{"step": 3, "inductionHeads": 3}\n');
    expectError(() => readHeadsRun(empty), /line 2 is not JSON/);
    writeFileSync(join(empty, "metrics.jsonl"), '{"step": 1}\n');
    expectError(() => readHeadsRun(empty), /line 1: inductionHeads is undefined, not a number/);
    expectError(() => readLayers(empty), /neither attention_before.json nor attention_after.json/);
    expectError(() => readShift(empty), /shift.json does not exist/);
    writeFileSync(join(empty, "shift.json"), "{ broken");
    expectError(() => readShift(empty), /shift.json is not valid JSON/);
  });

  test("writeRunFigures writes heads, layers and shift with their data, and leaves the inputs alone", async () => {
    const dir = fakeRun(30);
    const shiftBefore = readFileSync(join(dir, "shift.json"), "utf8");
    const written = await writeRunFigures(dir);
    expect(written).toEqual(["heads", "layers", "shift"].map((k) => join(dir, `${k}.png`)));
    for (const k of ["heads", "layers", "shift"]) {
      for (const ext of [".png", ".svg", ".data.csv", ".data.json"]) expect(existsSync(join(dir, k + ext))).toBe(true);
      const img = decodePng(readFileSync(join(dir, `${k}.png`)));
      expect([img.width, img.height]).toEqual([980, 720]);
    }
    expect(readFileSync(join(dir, "shift.json"), "utf8")).toBe(shiftBefore);
    expect(JSON.parse(readFileSync(join(dir, "heads.data.json"), "utf8")).x).toBe("samples");
    // a run that wrote only metrics gets only the heads figure
    const bare = freshDir("bare");
    copyFileSync(join(dir, "metrics.jsonl"), join(bare, "metrics.jsonl"));
    expect(await writeRunFigures(bare)).toEqual([join(bare, "heads.png")]);
  });
});

describe("sweep results and grids", () => {
  test("sensitivity: results.csv of a sweep (accuracy_after, failed cells empty)", () => {
    const p = join(freshDir(), "results.csv");
    writeFileSync(p, "index,cell,pid,A,B,seed,accuracy_before,accuracy_after,train_seconds,run_dir\n0,c0,true,0.5,1,0,0.6,0.8,3,x\n1,c1,false,0.5,1,0,0.6,,,x\n2,c2,false,1,1,0,0.6,0.7,3,\"a,b\"\n");
    expect(readSensitivityCsv(p)).toEqual([
      { A: 0.5, B: 1, pid: true, accuracy: 0.8 },
      { A: 1, B: 1, pid: false, accuracy: 0.7 },
    ]);
    writeFileSync(p, "A,B,accuracy\n0.5,1,0.8\n");
    expect(readSensitivityCsv(p)[0].pid).toBeNull();
    writeFileSync(p, "A,pid,accuracy\n0.5,true,0.8\n");
    expectError(() => readSensitivityCsv(p), /has no column B or B0 or b \(its columns: A, pid, accuracy\)/);
    writeFileSync(p, "A,B,pid,accuracy\n0.5,1,maybe,0.8\n");
    expectError(() => readSensitivityCsv(p), /row 2: pid: "maybe" is not true or false/);
    writeFileSync(p, "A,B,pid,accuracy\n0.5,1,true,\n");
    expectError(() => readSensitivityCsv(p), /no finished results/);
    writeFileSync(p, "");
    expectError(() => readSensitivityCsv(p), /is empty/);
  });

  test("data-efficiency: train-size as the sweep spells it", () => {
    const p = join(freshDir(), "results.csv");
    writeFileSync(p, "index,cell,objective,train-size,accuracy_after\n0,a,abft,64,0.7\n1,b,e2e,64,0.72\n");
    expect(readDataEfficiencyCsv(p)).toEqual([
      { trainSize: 64, objective: "abft", accuracy: 0.7 },
      { trainSize: 64, objective: "e2e", accuracy: 0.72 },
    ]);
  });

  test("contour grids: arrays, records, CSV", () => {
    const d = freshDir();
    const arrays = join(d, "g1.json");
    writeFileSync(arrays, JSON.stringify({ aE: [0, 1], aA: [0, 1, 2], accuracy: [[0.1, 0.2], [0.3, null], [0.5, 0.6]] }));
    const g = readContourGrid(arrays);
    expect(g.aA).toEqual([0, 1, 2]);
    expect(g.accuracy[1][1]).toBeNaN();
    const recs = join(d, "g2.json");
    writeFileSync(recs, JSON.stringify({ points: [{ a_E: 1, a_A: 0, accuracy: 0.2 }, { a_E: 0, a_A: 0, accuracy: 0.1 }, { a_E: 0, a_A: 1, accuracy: 0.3 }] }));
    expect(readContourGrid(recs)).toEqual({ aE: [0, 1], aA: [0, 1], accuracy: [[0.1, 0.2], [0.3, NaN]] });
    const csv = join(d, "g.csv");
    writeFileSync(csv, "a_E,a_A,accuracy\n0,0,0.1\n1,0,0.2\n0,1,0.3\n1,1,0.4\n");
    expect(readContourGrid(csv).accuracy).toEqual([[0.1, 0.2], [0.3, 0.4]]);
    writeFileSync(recs, JSON.stringify({ what: 1 }));
    expectError(() => readContourGrid(recs), /neither a list of points nor aE, aA and accuracy arrays/);
  });

  test("attention files: our format and `abft inspect --json` with a layer", () => {
    const d = freshDir();
    const p = join(d, "a.json");
    writeFileSync(p, JSON.stringify({ tokens: ["a", "b"], attention: [[0.5, 0.5]], label_positions: [1], correct_positions: [1], layer: 3 }));
    expect(readAttentionJson(p)).toEqual({ tokens: ["a", "b"], attention: [[0.5, 0.5]], labelPositions: [1], correctPositions: [1], layer: 3 });
    const q = join(d, "inspect.json");
    writeFileSync(q, JSON.stringify({ input_ids: [7, 8], logits_last: [0], attention_last_row: [[[1, 0]], [[0.2, 0.8]]] }));
    expect(readAttentionJson(q, 1)).toMatchObject({ tokens: ["#7", "#8"], attention: [[0.2, 0.8]], layer: 1 });
    expectError(() => readAttentionJson(q), /choose one with --layer/);
    expectError(() => readAttentionJson(q, 2), /--layer 2: .* has 2 layers/);
    writeFileSync(p, JSON.stringify({ tokens: "ab", attention: [] }));
    expectError(() => readAttentionJson(p), /"tokens" must be a list of strings/);
  });

  test("CSV parsing keeps quoted commas, quotes and newlines", () => {
    expect(parseCsvText('a,b\n"x, y","say ""hi""\nthere"\n')).toEqual([["a", "b"], ["x, y", 'say "hi"\nthere']]);
  });
});

describe("abft plot", () => {
  async function plot(...args: string[]): Promise<string[]> {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerPlot(program);
    const log = spyOn(console, "log").mockImplementation(() => {});
    try {
      await program.parseAsync(["plot", ...args], { from: "user" });
      return log.mock.calls.map((c) => String(c[0]));
    } finally {
      log.mockRestore();
    }
  }

  test("every kind writes its PNG, SVG and data, and prints the paths", async () => {
    const a = fakeRun(10);
    const b = fakeRun(12);
    const out = join(freshDir(), "two.png");
    expect(await plot("heads", a, b, "--labels", "first,second", "--out", out)).toEqual([out, out.replace(".png", ".svg"), out.replace(".png", ".data.csv"), out.replace(".png", ".data.json")]);
    expect(parseCsvText(readFileSync(out.replace(".png", ".data.csv"), "utf8")).filter((r) => r[0] === "second").length).toBe(12);
    expect((await plot("layers", a))[0]).toBe(join(a, "layers.png"));
    expect((await plot("shift", a, "--scale", "2", "--title", "")).length).toBe(4);
    expect(decodePng(readFileSync(join(a, "shift.png"))).width).toBe(490);

    const d = freshDir("sweep");
    writeFileSync(join(d, "results.csv"), "pid,A,B,seed,train-size,objective,accuracy_after\n" + [0, 1].flatMap((p) => [0.5, 1].flatMap((A) => [1, 2].map((B) => `${p === 1},${A},${B},0,${64 * B},${p ? "abft" : "e2e"},${0.5 + 0.1 * A + 0.05 * B}`))).join("\n") + "\n");
    expect((await plot("sensitivity", join(d, "results.csv")))[0]).toBe(join(d, "sensitivity.png"));
    expect((await plot("data-efficiency", join(d, "results.csv")))[0]).toBe(join(d, "data-efficiency.png"));
    writeFileSync(join(d, "grid.csv"), "a_E,a_A,accuracy\n0,0,0.1\n1,0,0.2\n0,1,0.3\n1,1,0.4\n");
    expect((await plot("contour", join(d, "grid.csv")))[0]).toBe(join(d, "contour.png"));
    writeFileSync(join(d, "att.json"), JSON.stringify({ tokens: ["x", "y", "z"], attention: [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], label_positions: [2], correct_positions: [2], layer: 4 }));
    expect((await plot("attention", "--json", join(d, "att.json")))[0]).toBe(join(d, "attention-layer4.png"));
    for (const f of ["sensitivity", "data-efficiency", "contour", "attention-layer4"]) expect(decodePng(readFileSync(join(d, `${f}.png`))).width).toBeGreaterThanOrEqual(980);
  });

  test("bad arguments are one-line errors", async () => {
    const a = fakeRun(5);
    await expect(plot("heads", a, "--labels", "x,y")).rejects.toThrow(/--labels names 2 runs but 1 run directories were given/);
    await expect(plot("heads", join(TMP, "missing"))).rejects.toThrow(PlotInputError);
    await expect(plot("contour", join(a, "shift.json"))).rejects.toThrow(/neither a list of points/);
    // never overwrite an input with a figure's files
    const g = join(freshDir(), "c.data.csv");
    writeFileSync(g, "a_E,a_A,accuracy\n0,0,0.1\n1,0,0.2\n0,1,0.3\n1,1,0.4\n");
    await expect(plot("contour", g, "--out", g.replace(".data.csv", ".png"))).rejects.toThrow(/would overwrite its input .*c.data.csv/);
    await expect(plot("heads", a, "--scale", "0")).rejects.toThrow(/--scale must be a number/);
  });
});

test("a compiled binary, copied alone to an empty directory, draws figures with every font hidden", () => {
  const dir = freshDir("bin");
  const entry = join(dir, "entry.ts");
  writeFileSync(
    entry,
    [
      `import { Command } from ${JSON.stringify(join(ROOT, "node_modules/commander/esm.mjs"))};`,
      `import { registerPlot } from ${JSON.stringify(join(ROOT, "src/cli/plot.ts"))};`,
      `const program = new Command("abft").exitOverride();`,
      `registerPlot(program);`,
      `try { await program.parseAsync(process.argv); } catch (e) { console.error("abft: error: " + (e as Error).message); process.exit(1); }`,
    ].join("\n"),
  );
  const build = Bun.spawnSync(["bun", "build", "--compile", entry, "--outfile", join(dir, "abft-built")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(build.stderr.toString()).not.toContain("error");
  expect(build.exitCode).toBe(0);
  const alone = freshDir("alone");
  copyFileSync(join(dir, "abft-built"), join(alone, "abft"));
  Bun.spawnSync(["chmod", "+x", join(alone, "abft")]);
  const run = fakeRun(15);
  const conf = join(alone, "fonts.conf");
  mkdirSync(join(alone, "nofonts"));
  writeFileSync(conf, `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${join(alone, "nofonts")}</dir></fontconfig>\n`);
  const env = { PATH: "/usr/bin:/bin", HOME: alone, FONTCONFIG_FILE: conf };
  const ok = Bun.spawnSync([join(alone, "abft"), "plot", "heads", run, "--out", join(alone, "h.png")], { cwd: alone, env, stdout: "pipe", stderr: "pipe" });
  expect(ok.stderr.toString()).toBe("");
  expect(ok.exitCode).toBe(0);
  const img = decodePng(readFileSync(join(alone, "h.png")));
  expect([img.width, img.height]).toEqual([980, 720]);
  // the same file as this process (which has the sources and node_modules) draws
  expect(Buffer.compare(readFileSync(join(alone, "h.png")), headsFigure([readHeadsRun(run)]).png)).toBe(0);
  const bad = Bun.spawnSync([join(alone, "abft"), "plot", "shift", join(alone, "nope")], { cwd: alone, env, stdout: "pipe", stderr: "pipe" });
  expect(bad.exitCode).toBe(1);
  expect(bad.stderr.toString().trim()).toMatch(/^abft: error: run directory .*nope does not exist$/);
}, 120_000);
