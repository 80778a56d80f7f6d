// Inputs of the figures (src/analysis/figures.ts) read from what abft writes, and the figures
// written next to them:
//   run directory      metrics.jsonl (heads), attention_before.json / attention_after.json
//                      (layers), shift.json (shift), config.json (train.batch, for samples seen)
//   sweep results.csv  columns A, B, pid, accuracy (or accuracy_after)      -> sensitivity
//                      columns train_size (or train-size), objective, accuracy -> data-efficiency
//                      (rows with an empty accuracy, failed cells, are left out)
//   interpolation grid JSON {aE, aA, accuracy: [aA][aE]} or records {a_E, a_A, accuracy} (a list,
//                      or under "points"/"grid"/"results"), or CSV with columns a_E, a_A, accuracy
//   attention JSON     {tokens, attention: [heads][tokens], label_positions, correct_positions, layer}
// Every bad input is one PlotInputError line naming the file and what is wrong.
// A figure is written as FILE.png plus FILE.svg, FILE.data.csv and FILE.data.json beside it.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { PlotInputError, type FigureOutput } from "./figures.ts";
import type { ContourData, DataEfficiencyRow, SensitivityRow } from "./figures_accuracy.ts";
import type { AttentionData } from "./figures_attention.ts";
import { headsFigure, layersFigure, shiftFigure, type HeadsRun, type LayerAttention, type LayersData, type ShiftData } from "./figures_training.ts";
import { parseCsv } from "./sweep_results.ts";

// ---------------------------------------------------------------------------------------------
// files

function readText(path: string, what: string): string {
  if (!existsSync(path)) throw new PlotInputError(`${path} does not exist`, what);
  if (statSync(path).isDirectory()) throw new PlotInputError(`${path} is a directory, not a file`, what);
  return readFileSync(path, "utf8");
}

function readJsonFile(path: string, what: string): unknown {
  const text = readText(path, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PlotInputError(`${path} is not valid JSON (${(e as Error).message.split("\n")[0]})`, what);
  }
}

function checkRunDir(dir: string): void {
  if (!existsSync(dir)) throw new PlotInputError(`run directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new PlotInputError(`${dir} is not a directory (expected an abft run directory)`);
}

const RUN_HINT = "give the directory that `abft run` wrote (it holds config.json and metrics.jsonl)";

function num(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new PlotInputError(`${where} is ${JSON.stringify(v)}, not a number`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// run directories

/** metrics.jsonl of a run: the induction-head count per step (a torn last line is dropped). */
export function readHeadsRun(dir: string, label?: string): HeadsRun {
  checkRunDir(dir);
  const path = join(dir, "metrics.jsonl");
  const text = readText(path, RUN_HINT);
  const steps: number[] = [];
  const heads: number[] = [];
  const lines = text.split("\n").filter((l) => l.trim());
  lines.forEach((line, i) => {
    let rec: { step?: unknown; inductionHeads?: unknown };
    try {
      rec = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return; // cut short by a crash
      throw new PlotInputError(`${path}: line ${i + 1} is not JSON`);
    }
    steps.push(num(rec.step, `${path}: line ${i + 1}: step`));
    heads.push(num(rec.inductionHeads, `${path}: line ${i + 1}: inductionHeads`));
  });
  if (!steps.length) throw new PlotInputError(`${path} has no steps yet`, "plot after the run has finished at least one step");
  let samplesPerStep: number | undefined;
  const cfgPath = join(dir, "config.json");
  if (existsSync(cfgPath)) {
    const cfg = readJsonFile(cfgPath, RUN_HINT) as { train?: { batch?: unknown } };
    if (typeof cfg?.train?.batch === "number") samplesPerStep = cfg.train.batch;
  }
  return { label: label ?? basename(resolve(dir)), steps, inductionHeads: heads, samplesPerStep };
}

interface StatsFile {
  layers: { layer: number; inductionAttention: number; correctAttention: number }[];
}

function readStats(path: string): { layers: number[]; s: LayerAttention } {
  const j = readJsonFile(path, RUN_HINT) as StatsFile;
  if (!j || !Array.isArray(j.layers) || !j.layers.length) throw new PlotInputError(`${path} has no "layers" list`);
  const rows = [...j.layers].sort((a, b) => a.layer - b.layer);
  return {
    layers: rows.map((r, i) => num(r.layer, `${path}: layers[${i}].layer`)),
    s: {
      induction: rows.map((r, i) => num(r.inductionAttention, `${path}: layers[${i}].inductionAttention`)),
      correct: rows.map((r, i) => num(r.correctAttention, `${path}: layers[${i}].correctAttention`)),
    },
  };
}

/** attention_before.json and attention_after.json (either may be missing, not both). */
export function readLayers(dir: string): LayersData {
  checkRunDir(dir);
  const [pb, pa] = [join(dir, "attention_before.json"), join(dir, "attention_after.json")];
  if (!existsSync(pb) && !existsSync(pa)) {
    throw new PlotInputError(`${dir} has neither attention_before.json nor attention_after.json`, "they are written by `abft run` when it evaluates the model");
  }
  const before = existsSync(pb) ? readStats(pb) : undefined;
  const after = existsSync(pa) ? readStats(pa) : undefined;
  if (before && after && before.layers.join() !== after.layers.join()) {
    throw new PlotInputError(`${pb} and ${pa} list different layers`);
  }
  return { layers: (before ?? after)!.layers, before: before?.s, after: after?.s };
}

/** shift.json: ||ΔW_Q||_F and ||ΔW_K||_F per layer. */
export function readShift(dir: string): ShiftData {
  checkRunDir(dir);
  const path = join(dir, "shift.json");
  const j = readJsonFile(path, "shift.json is written by `abft run` after training") as { layers?: { layer: number; q: number; k: number }[] };
  if (!j || !Array.isArray(j.layers) || !j.layers.length) throw new PlotInputError(`${path} has no "layers" list`);
  const rows = [...j.layers].sort((a, b) => a.layer - b.layer);
  return {
    layers: rows.map((r, i) => num(r.layer, `${path}: layers[${i}].layer`)),
    q: rows.map((r, i) => num(r.q, `${path}: layers[${i}].q`)),
    k: rows.map((r, i) => num(r.k, `${path}: layers[${i}].k`)),
  };
}

// ---------------------------------------------------------------------------------------------
// CSV (sweep results, grids)

/** RFC 4180 rows without blank lines (the parser is the sweep's results.csv reader). */
export function parseCsvText(text: string): string[][] {
  return parseCsv(text).filter((r) => r.length > 1 || r[0] !== "");
}

/** A CSV file as records keyed by header; `columns` maps each wanted name to the headers accepted for it. */
function readCsvColumns<K extends string>(path: string, columns: Record<K, string[]>, optional: NoInfer<K>[] = []): { rows: Record<K, string>[]; has: Record<K, boolean> } {
  const all = parseCsvText(readText(path, "give a results CSV (for a sweep: its results.csv)"));
  if (!all.length) throw new PlotInputError(`${path} is empty`);
  const header = all[0].map((h) => h.trim());
  const index = {} as Record<K, number>;
  const has = {} as Record<K, boolean>;
  for (const k of Object.keys(columns) as K[]) {
    index[k] = header.findIndex((h) => columns[k].includes(h));
    has[k] = index[k] >= 0;
    if (!has[k] && !optional.includes(k)) {
      throw new PlotInputError(`${path} has no column ${columns[k].join(" or ")} (its columns: ${header.join(", ")})`);
    }
  }
  const rows = all.slice(1).map((r) => {
    const rec = {} as Record<K, string>;
    for (const k of Object.keys(columns) as K[]) rec[k] = has[k] ? (r[index[k]] ?? "").trim() : "";
    return rec;
  });
  return { rows, has };
}

function parseNumber(s: string, where: string): number {
  const v = Number(s);
  if (s === "" || !Number.isFinite(v)) throw new PlotInputError(`${where}: ${JSON.stringify(s)} is not a number`);
  return v;
}

function parseBool(s: string, where: string): boolean {
  const t = s.toLowerCase();
  if (["true", "1", "yes", "on", "pid"].includes(t)) return true;
  if (["false", "0", "no", "off", "no-pid"].includes(t)) return false;
  throw new PlotInputError(`${where}: ${JSON.stringify(s)} is not true or false`);
}

const ACCURACY = ["accuracy", "accuracy_after", "acc"];

/** Sweep results for Fig. 6: A, B, pid (optional: one panel without it), accuracy. */
export function readSensitivityCsv(path: string): SensitivityRow[] {
  const { rows, has } = readCsvColumns(path, { A: ["A", "A0", "a"], B: ["B", "B0", "b"], pid: ["pid"], accuracy: ACCURACY }, ["pid"]);
  const out: SensitivityRow[] = [];
  rows.forEach((r, i) => {
    if (r.accuracy === "") return; // a failed cell
    const at = `${path}: row ${i + 2}`;
    out.push({ A: parseNumber(r.A, `${at}: A`), B: parseNumber(r.B, `${at}: B`), pid: has.pid ? parseBool(r.pid, `${at}: pid`) : null, accuracy: parseNumber(r.accuracy, `${at}: accuracy`) });
  });
  if (!out.length) throw new PlotInputError(`${path} has no finished results (no row with an accuracy)`);
  return out;
}

/** Sweep results for Fig. 15: train_size, objective, accuracy. */
export function readDataEfficiencyCsv(path: string): DataEfficiencyRow[] {
  const { rows } = readCsvColumns(path, { trainSize: ["train_size", "train-size", "trainSize", "n_train"], objective: ["objective", "method", "variant"], accuracy: ACCURACY });
  const out: DataEfficiencyRow[] = [];
  rows.forEach((r, i) => {
    if (r.accuracy === "") return;
    const at = `${path}: row ${i + 2}`;
    out.push({ trainSize: parseNumber(r.trainSize, `${at}: train_size`), objective: r.objective || "?", accuracy: parseNumber(r.accuracy, `${at}: accuracy`) });
  });
  if (!out.length) throw new PlotInputError(`${path} has no finished results (no row with an accuracy)`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// interpolation grid

const AE = ["aE", "a_E", "alpha_E", "alphaE", "a_e"];
const AA = ["aA", "a_A", "alpha_A", "alphaA", "a_a"];

function pick(o: Record<string, unknown>, names: string[]): unknown {
  for (const n of names) if (n in o) return o[n];
  return undefined;
}

/** A grid from records (a_E, a_A, accuracy): the distinct coordinates, NaN where a pair is missing. */
export function gridFromRecords(recs: { aE: number; aA: number; accuracy: number }[], where: string): ContourData {
  if (!recs.length) throw new PlotInputError(`${where} has no grid points`);
  const aE = [...new Set(recs.map((r) => r.aE))].sort((a, b) => a - b);
  const aA = [...new Set(recs.map((r) => r.aA))].sort((a, b) => a - b);
  const accuracy = aA.map(() => aE.map(() => NaN));
  for (const r of recs) accuracy[aA.indexOf(r.aA)][aE.indexOf(r.aE)] = r.accuracy;
  return { aE, aA, accuracy };
}

export function readContourGrid(path: string): ContourData {
  const hint = "give the grid that `abft interpolate` wrote (JSON or CSV with a_E, a_A, accuracy)";
  if (extname(path).toLowerCase() === ".csv") {
    const { rows } = readCsvColumns(path, { aE: AE, aA: AA, accuracy: ACCURACY });
    const recs = rows
      .filter((r) => r.accuracy !== "")
      .map((r, i) => ({ aE: parseNumber(r.aE, `${path}: row ${i + 2}: a_E`), aA: parseNumber(r.aA, `${path}: row ${i + 2}: a_A`), accuracy: parseNumber(r.accuracy, `${path}: row ${i + 2}: accuracy`) }));
    return gridFromRecords(recs, path);
  }
  const j = readJsonFile(path, hint) as Record<string, unknown> | unknown[];
  const list = Array.isArray(j) ? j : (pick(j as Record<string, unknown>, ["points", "grid", "results"]) as unknown);
  if (Array.isArray(list)) {
    const recs = list.map((r, i) => {
      const o = r as Record<string, unknown>;
      return { aE: num(pick(o, AE), `${path}: point ${i}: a_E`), aA: num(pick(o, AA), `${path}: point ${i}: a_A`), accuracy: num(pick(o, ACCURACY), `${path}: point ${i}: accuracy`) };
    });
    return gridFromRecords(recs, path);
  }
  const o = j as Record<string, unknown>;
  const aE = pick(o, AE);
  const aA = pick(o, AA);
  const acc = pick(o, ACCURACY);
  if (!Array.isArray(aE) || !Array.isArray(aA) || !Array.isArray(acc)) {
    throw new PlotInputError(`${path} has neither a list of points nor aE, aA and accuracy arrays`, hint);
  }
  return {
    aE: aE.map((v, i) => num(v, `${path}: aE[${i}]`)),
    aA: aA.map((v, i) => num(v, `${path}: aA[${i}]`)),
    accuracy: acc.map((row, i) => {
      if (!Array.isArray(row)) throw new PlotInputError(`${path}: accuracy[${i}] is not a list`);
      return row.map((v) => (v === null ? NaN : num(v, `${path}: accuracy[${i}]`)));
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// attention of one prompt

/**
 * One prompt's attention: {tokens, attention [heads][tokens], label_positions, correct_positions,
 * layer}; or `abft inspect --json` output (attention_last_row [layers][heads][tokens], input_ids,
 * optional tokens) with `layer` choosing the layer.
 */
export function readAttentionJson(path: string, layer?: number): AttentionData {
  const o = readJsonFile(path, "give a JSON with tokens, attention [heads][tokens], label_positions, correct_positions, layer") as Record<string, unknown>;
  if (!o || typeof o !== "object" || Array.isArray(o)) throw new PlotInputError(`${path}: expected a JSON object`);
  let attention = o.attention;
  let tokens = o.tokens;
  let at = pick(o, ["layer"]);
  if (Array.isArray(o.attention_last_row) && (attention === undefined || layer !== undefined)) {
    const rows = o.attention_last_row;
    if (layer === undefined) throw new PlotInputError(`${path} holds the attention of every layer (abft inspect --json): choose one with --layer`);
    if (layer >= rows.length) throw new PlotInputError(`--layer ${layer}: ${path} has ${rows.length} layers`);
    attention = rows[layer];
    at = layer;
    if (tokens === undefined && Array.isArray(o.input_ids)) tokens = o.input_ids.map((id) => `#${id}`);
  }
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "string")) throw new PlotInputError(`${path}: "tokens" must be a list of strings`);
  if (!Array.isArray(attention) || !attention.every(Array.isArray)) throw new PlotInputError(`${path}: "attention" must be a list (heads) of lists (tokens)`);
  const ints = (names: string[]): number[] => {
    const v = pick(o, names);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new PlotInputError(`${path}: "${names[0]}" must be a list of token positions`);
    return v.map((x, i) => num(x, `${path}: ${names[0]}[${i}]`));
  };
  return {
    tokens: tokens as string[],
    attention: (attention as unknown[][]).map((row, h) => row.map((v, i) => num(v, `${path}: attention[${h}][${i}]`))),
    labelPositions: ints(["label_positions", "labelPositions"]),
    correctPositions: ints(["correct_positions", "correctPositions"]),
    layer: at === undefined ? 0 : num(at, `${path}: layer`),
  };
}

// ---------------------------------------------------------------------------------------------
// writing

/**
 * The four files of a figure: FILE.png and, beside it, FILE.svg, FILE.data.csv and FILE.data.json
 * (".data" keeps them clear of the inputs: a run directory's shift.json, a sweep's results.csv).
 */
export function figurePaths(png: string): { png: string; svg: string; csv: string; json: string } {
  const base = extname(png).toLowerCase() === ".png" ? png.slice(0, -4) : png;
  return { png: `${base}.png`, svg: `${base}.svg`, csv: `${base}.data.csv`, json: `${base}.data.json` };
}

/** Writes the figure's files; refuses to overwrite any of `inputs`. Returns the paths written. */
export function writeFigure(png: string, fig: FigureOutput, inputs: readonly string[] = []): string[] {
  const p = figurePaths(png);
  const taken = new Set(inputs.map((x) => resolve(x)));
  for (const f of Object.values(p)) {
    if (taken.has(resolve(f))) throw new PlotInputError(`writing the figure would overwrite its input ${f}`, "choose another name with --out");
  }
  mkdirSync(dirname(p.png), { recursive: true });
  writeFileSync(p.png, fig.png);
  writeFileSync(p.svg, fig.svg);
  writeFileSync(p.csv, fig.csv);
  writeFileSync(p.json, JSON.stringify(fig.json, null, 1) + "\n");
  return [p.png, p.svg, p.csv, p.json];
}

/** The files of a run directory that figures read (never to be overwritten by one). */
export function runInputs(dir: string): string[] {
  return ["config.json", "metrics.jsonl", "attention_before.json", "attention_after.json", "shift.json", "summary.json"].map((f) => join(dir, f));
}

/**
 * The figures of one run, written into its directory: heads.png (from metrics.jsonl),
 * layers.png (attention statistics) and shift.png (shift.json), each with its data. A figure whose
 * input the run did not write is skipped. Returns the PNG paths written.
 */
export async function writeRunFigures(runDir: string): Promise<string[]> {
  checkRunDir(runDir);
  const written: string[] = [];
  const metrics = join(runDir, "metrics.jsonl");
  if (existsSync(metrics) && readFileSync(metrics, "utf8").trim()) {
    const run = readHeadsRun(runDir);
    const fig = headsFigure([run], { x: run.samplesPerStep ? "samples" : "step" });
    written.push(writeFigure(join(runDir, "heads.png"), fig, runInputs(runDir))[0]);
  }
  if (existsSync(join(runDir, "attention_before.json")) || existsSync(join(runDir, "attention_after.json"))) {
    written.push(writeFigure(join(runDir, "layers.png"), layersFigure(readLayers(runDir)), runInputs(runDir))[0]);
  }
  if (existsSync(join(runDir, "shift.json"))) {
    written.push(writeFigure(join(runDir, "shift.png"), shiftFigure(readShift(runDir)), runInputs(runDir))[0]);
  }
  return written;
}
