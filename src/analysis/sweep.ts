// Sweeps: a grid of `abft run` settings, run unattended, one subprocess per cell, resumable.
//
// A spec (JSON) names the runs:
//   {
//     "name": "table4",                        letters, digits, . _ - (the Slurm job name)
//     "description": "...",                    optional, free text
//     "base": { "model": "...", "steps": 32 }, options every cell gets (keys as in `abft run --help`,
//                                              without the dashes: "train-size", "A", "pid", ...)
//     "grid": { "task": ["sst2", "mr"], "seed": [0, 1, 2, 3] },
//                                              the cartesian product of these lists; or a list of
//                                              such objects, whose products are concatenated (e.g.
//                                              4 seeds for small models, 2 for big ones)
//     "variants": [ { "label": "ABFT" }, { "label": "w/o PID", "pid": false } ],
//                                              optional: named option sets crossed with the grid
//                                              (ablation rows that are no cartesian product)
//     "out": "sweeps/table4"                   optional; default sweeps/<name>, relative to the cwd
//   }
// Later layers override earlier ones (base < grid < variant); a key may not be both in the grid and
// in a variant. Booleans are JSON booleans: "pid": false is `--no-pid`, "train-bias": true is
// `--train-bias`. "out" and "resume" belong to the sweep. Every key and value is checked against
// the `abft run` command's own options (their parsers), so a bad spec fails before anything runs,
// with one line naming the key and value.
//
// Cells are ordered variant-major, then grid entries in the order written, then each entry's keys
// in the order written (the first key varies slowest); the index of a cell is its place in that
// order (0-based). A cell's id is a readable slug of its varied values plus 8 hex digits of a hash
// of all its options that differ from the run defaults: gpt2-large_sst2_no-pid_seed-1_3f9a2c1b.
// The id depends neither on the order of keys and values nor on the other cells, so a grid can be
// reordered or grow without orphaning finished cells; changing "base" changes every id (those are
// other runs), and so does moving a key between base and grid (the slug names the grid's keys).
//
// Layout of <out>:
//   cells/<id>/       the cell's `abft run` directory (config.json, ..., summary.json), plus
//                     sweep.log (the run's stdout and stderr, every attempt) and failed.json (exit
//                     code and last stderr line of a failed attempt; removed when it is retried)
//   results.csv       one row per finished cell, appended as each finishes (header once):
//                     index, cell, [variant,] the varied keys, accuracy_before, accuracy_after,
//                     train_seconds, run_dir. Never rewritten by a running sweep; --merge rebuilds it.
//   results.shard-<i>-of-<n>.csv   the same, for `--shard i/n` (shards may run at once on a shared
//                     file system, so each appends to its own file; `--cell k` appends to none)
//   summary.md        mean ± sample standard deviation (n − 1) over seeds, rows = model and method,
//                     columns = tasks plus their mean, in the shape of the paper's Tables 1 and 4
//
// A cell with summary.json is finished and skipped; one with config.json but no summary.json was
// interrupted and is continued with `abft run --resume`; any other is run from the start. A cell
// whose run exits non-zero (or without summary.json) is recorded as failed and the sweep goes on;
// failed cells are retried by the next sweep unless it is given skipFailed.
import type { Command } from "commander";
import { createHash } from "node:crypto";
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, dirname, join } from "node:path";
import { AbftError } from "../gpu/errors.ts";

export type OptionValue = string | number | boolean;
export type Options = Record<string, OptionValue>;

// ---------------------------------------------------------------------------------------------
// The options of `abft run`, read from its commander definition

export interface RunOptionInfo {
  /** the option's long name without dashes; for `--no-pid` it is "pid" */
  key: string;
  /** value: `--k <x>`; flag: `--train-bias` (default false); negatable: `--no-pid` (default true) */
  kind: "value" | "flag" | "negatable";
  default?: OptionValue;
  /** the option's own argument parser (throws a one-line error on a bad value) */
  parse?: (v: string) => unknown;
  choices?: readonly string[];
}

export type RunOptionTable = Map<string, RunOptionInfo>;

/** Options a spec may not set: the sweep chooses each cell's run directory. */
const RESERVED = new Set(["out", "resume", "help"]);
/** Values that `abft run` checks only when it starts; checked here too, so a spec fails early. */
const CHOICES: Record<string, readonly string[]> = { objective: ["abft", "e2e"] };
/** Options that change the evaluation (the "Vanilla" accuracy), as opposed to training only. */
const EVAL_KEYS = new Set(["model", "revision", "task", "data", "seed", "k", "test-queries", "test-prompts"]);

/** The option table of the `abft run` command (pass the command itself). */
export function runOptionTable(run: Command): RunOptionTable {
  const table: RunOptionTable = new Map();
  for (const o of run.options) {
    if (!o.long) continue;
    const negate = o.negate;
    const key = o.long.replace(/^--/, "").replace(negate ? /^no-/ : /^$/, "");
    if (RESERVED.has(key)) continue;
    const parseArg = o.parseArg;
    if (negate) table.set(key, { key, kind: "negatable", default: true });
    else if (o.isBoolean()) table.set(key, { key, kind: "flag", default: false });
    else {
      table.set(key, {
        key,
        kind: "value",
        default: o.defaultValue as OptionValue | undefined,
        parse: parseArg ? (v: string) => parseArg(v, undefined) : undefined,
        choices: CHOICES[key],
      });
    }
  }
  return table;
}

// ---------------------------------------------------------------------------------------------
// Spec

export interface Variant {
  label: string;
  options: Options;
}

export interface SweepSpec {
  name: string;
  description?: string;
  base: Options;
  /** one or more grids; the cells are the concatenation of their cartesian products */
  grids: Record<string, OptionValue[]>[];
  variants: Variant[] | null;
  out: string;
}

export class SpecError extends AbftError {
  constructor(message: string, hint?: string) {
    super(message, "BAD_SPEC", hint);
  }
}

const TOP_KEYS = ["name", "description", "base", "grid", "variants", "out"];

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function suggestKey(key: string, table: RunOptionTable): string {
  if (key.startsWith("no-") && table.get(key.slice(3))?.kind === "negatable") return ` (write "${key.slice(3)}": false)`;
  const kebab = key.replace(/^-+/, "").replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
  for (const k of table.keys()) if (k.toLowerCase() === kebab) return ` (did you mean '${k}'?)`;
  if (RESERVED.has(kebab)) return ` ('${kebab}' is chosen by the sweep: each cell runs in <out>/cells/<id>)`;
  let best = "";
  let bestD = 3;
  for (const k of table.keys()) {
    const dist = levenshtein(k.toLowerCase(), kebab);
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return best ? ` (did you mean '${best}'?)` : "";
}

const show = (v: unknown) => (typeof v === "string" ? `'${v}'` : JSON.stringify(v));

/** Checks one option value and returns it in canonical form (numbers as numbers). */
function checkValue(where: string, info: RunOptionInfo, v: unknown): OptionValue {
  if (info.kind !== "value") {
    if (typeof v !== "boolean") throw new SpecError(`${where}: ${show(v)} must be true or false`);
    return v;
  }
  if (typeof v !== "number" && typeof v !== "string") throw new SpecError(`${where}: ${show(v)} must be a number or a string`);
  const s = String(v);
  if (info.choices && !info.choices.includes(s)) throw new SpecError(`${where}: ${show(v)} must be one of ${info.choices.join(", ")}`);
  if (!info.parse) return s;
  let parsed: unknown;
  try {
    parsed = info.parse(s);
  } catch (e) {
    throw new SpecError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return typeof parsed === "number" || typeof parsed === "string" ? parsed : s;
}

function checkOptions(where: string, obj: unknown, table: RunOptionTable, skip: readonly string[] = []): Options {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new SpecError(`${where} must be an object of run options`);
  const out: Options = {};
  for (const [k, v] of Object.entries(obj)) {
    if (skip.includes(k)) continue;
    const info = table.get(k);
    if (!info) throw new SpecError(`${where}: unknown run option '${k}'${suggestKey(k, table)}`);
    out[k] = checkValue(`${where}.${k}`, info, v);
  }
  return out;
}

function checkGrid(where: string, obj: unknown, table: RunOptionTable): Record<string, OptionValue[]> {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new SpecError(`${where} must be an object of option lists, e.g. {"seed": [0, 1, 2]}`);
  const out: Record<string, OptionValue[]> = {};
  for (const [k, vs] of Object.entries(obj)) {
    const info = table.get(k);
    if (!info) throw new SpecError(`${where}: unknown run option '${k}'${suggestKey(k, table)}`);
    if (!Array.isArray(vs)) throw new SpecError(`${where}.${k}: must be a list of values, e.g. [${show(vs)}]`);
    if (vs.length === 0) throw new SpecError(`${where}.${k}: the list is empty`);
    const seen = new Set<string>();
    out[k] = vs.map((v, i) => {
      const c = checkValue(`${where}.${k}[${i}]`, info, v);
      const id = JSON.stringify(c);
      if (seen.has(id)) throw new SpecError(`${where}.${k}: ${show(v)} appears twice`);
      seen.add(id);
      return c;
    });
  }
  return out;
}

/** Validates a parsed spec; `source` (the file) prefixes every error. */
export function parseSpec(json: unknown, table: RunOptionTable, source = "spec"): SweepSpec {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new SpecError(`${source}: a sweep spec must be a JSON object`);
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!TOP_KEYS.includes(k)) throw new SpecError(`${source}: unknown key '${k}' (a spec has ${TOP_KEYS.join(", ")})`);
  }
  const fallbackName = basename(source).replace(/\.json$/i, "");
  const name = o.name === undefined ? fallbackName : o.name;
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]+$/.test(name)) throw new SpecError(`${source}: name ${show(name)} must be letters, digits, '.', '_' or '-'`);
  if (o.description !== undefined && typeof o.description !== "string") throw new SpecError(`${source}: description must be a string`);
  const base = o.base === undefined ? {} : checkOptions(`${source}: base`, o.base, table);
  if (o.grid === undefined && o.variants === undefined) throw new SpecError(`${source}: no "grid" (e.g. "grid": {"seed": [0, 1, 2]})`);
  const rawGrids = o.grid === undefined ? [{}] : Array.isArray(o.grid) ? o.grid : [o.grid];
  if (rawGrids.length === 0) throw new SpecError(`${source}: grid is an empty list`);
  const grids = rawGrids.map((g, i) => checkGrid(`${source}: grid${Array.isArray(o.grid) ? `[${i}]` : ""}`, g, table));
  let variants: Variant[] | null = null;
  if (o.variants !== undefined) {
    if (!Array.isArray(o.variants) || o.variants.length === 0) throw new SpecError(`${source}: variants must be a non-empty list of objects`);
    const gridKeys = new Set(grids.flatMap((g) => Object.keys(g)));
    const labels = new Set<string>();
    variants = o.variants.map((v, i) => {
      const where = `${source}: variants[${i}]`;
      const options = checkOptions(where, v, table, ["label"]);
      const raw = (v as Record<string, unknown>).label;
      if (raw !== undefined && (typeof raw !== "string" || raw.trim() === "")) throw new SpecError(`${where}.label must be a non-empty string`);
      const label = (raw as string | undefined) ?? (Object.entries(options).map(([k, x]) => describeValue(k, x, table)).join(", ") || "default");
      if (labels.has(label)) throw new SpecError(`${where}: label '${label}' is used twice`);
      labels.add(label);
      for (const k of Object.keys(options)) {
        if (gridKeys.has(k)) throw new SpecError(`${where}: sets '${k}', which the grid varies (set it in one place only)`);
      }
      return { label, options };
    });
  }
  if (o.out !== undefined && (typeof o.out !== "string" || o.out === "")) throw new SpecError(`${source}: out must be a folder path`);
  const out = (o.out as string | undefined) ?? join("sweeps", name);
  return { name, description: o.description as string | undefined, base, grids, variants, out };
}

/** Reads and validates a spec file. */
export function loadSpec(path: string, table: RunOptionTable): SweepSpec {
  if (!existsSync(path)) throw new SpecError(`${path}: no such sweep spec`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new SpecError(`${path}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseSpec(json, table, path);
}

// ---------------------------------------------------------------------------------------------
// Cells

export interface Cell {
  /** place in the spec's order, 0-based (what --cell and --shard refer to) */
  index: number;
  id: string;
  /** the variant's label, when the spec has variants */
  variant?: string;
  /** every option the cell passes to `abft run` (base, grid and variant merged) */
  options: Options;
  /** the effective value of every varied key (the option, else the run default; null if neither) */
  values: Record<string, OptionValue | null>;
}

/** The keys whose values differ between cells: the grids' keys, then the variants' ("variant" first). */
export function variedKeys(spec: SweepSpec): string[] {
  const keys: string[] = [];
  const add = (k: string) => {
    if (!keys.includes(k)) keys.push(k);
  };
  if (spec.variants) add("variant");
  for (const g of spec.grids) for (const k of Object.keys(g)) add(k);
  for (const v of spec.variants ?? []) for (const k of Object.keys(v.options)) add(k);
  return keys;
}

export function effectiveValue(options: Options, key: string, table: RunOptionTable): OptionValue | null {
  return options[key] ?? table.get(key)?.default ?? null;
}

function product(grid: Record<string, OptionValue[]>): Options[] {
  let out: Options[] = [{}];
  for (const [k, vs] of Object.entries(grid)) out = out.flatMap((o) => vs.map((v) => ({ ...o, [k]: v })));
  return out;
}

function slugify(s: string, max = 40): string {
  return s.replace(/[^A-Za-z0-9.+-]+/g, "-").replace(/^[-.]+|-+$/g, "").slice(0, max) || "x";
}

/** How a value reads in a label: "ABFT", "w/o PID", "A=0.5". */
export function describeValue(key: string, v: OptionValue | null, table: RunOptionTable): string {
  const info = table.get(key);
  if (key === "objective" && typeof v === "string") return v.toUpperCase();
  if (info && info.kind !== "value") {
    const name = key === "pid" ? "PID" : key.replace(/-/g, " ");
    return v ? name : `w/o ${name}`;
  }
  if (key === "model" && typeof v === "string") return shortModel(v);
  return `${key}=${v ?? "-"}`;
}

export function shortModel(m: string): string {
  return m.replace(/[\\/]+$/, "").replace(/^.*[\\/]/, "") || m;
}

function idPiece(key: string, v: OptionValue | null, table: RunOptionTable): string {
  const info = table.get(key);
  if (info && info.kind !== "value") return v ? key : `no-${key}`;
  const s = String(v ?? "none");
  if (key === "model") return slugify(shortModel(s));
  if (key === "task") return slugify(basename(s).replace(/\.json$/i, ""));
  if (key === "objective" || key === "variant") return slugify(s);
  return slugify(`${key}-${s}`);
}

function canonicalOptions(options: Options, table: RunOptionTable): string {
  const keep = Object.keys(options)
    .filter((k) => options[k] !== table.get(k)?.default)
    .sort();
  return JSON.stringify(keep.map((k) => [k, options[k]]));
}

/**
 * The id of a cell: a slug of `values` (the variant's label and the grid's values, in a fixed order:
 * variant, model, task, objective, the others by name, seed) + 8 hex digits of a hash of every
 * option that differs from the run default.
 */
export function cellId(options: Options, values: Record<string, OptionValue | null>, table: RunOptionTable): string {
  const hash = createHash("sha256").update(canonicalOptions(options, table)).digest("hex").slice(0, 8);
  const first = ["variant", "model", "task", "objective"];
  const rank = (k: string) => (first.includes(k) ? first.indexOf(k) : k === "seed" ? 2 * first.length : first.length);
  const keys = Object.keys(values).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const slug = keys
    .map((k) => idPiece(k, values[k], table))
    .join("_")
    .slice(0, 100);
  return `${slug || "cell"}_${hash}`;
}

/** Every cell of the spec, in order. Two cells that are the same run are an error. */
export function expandCells(spec: SweepSpec, table: RunOptionTable): Cell[] {
  const keys = variedKeys(spec);
  const combos = spec.grids.flatMap(product);
  const gridKeys = new Set(spec.grids.flatMap((g) => Object.keys(g)));
  const cells: Cell[] = [];
  const seen = new Map<string, number>();
  for (const variant of spec.variants ?? [null]) {
    for (const combo of combos) {
      const options: Options = { ...spec.base, ...combo, ...(variant?.options ?? {}) };
      const values: Record<string, OptionValue | null> = {};
      for (const k of keys) values[k] = k === "variant" ? (variant?.label ?? null) : effectiveValue(options, k, table);
      // the variant's label stands for its options in the id
      const idValues = Object.fromEntries(Object.entries(values).filter(([k]) => k === "variant" || gridKeys.has(k)));
      const id = cellId(options, idValues, table);
      const index = cells.length;
      const prev = seen.get(id);
      if (prev !== undefined) throw new SpecError(`spec ${spec.name}: cells ${prev} and ${index} are the same run (${id}); remove the duplicate from the grid`);
      seen.set(id, index);
      cells.push({ index, id, variant: variant?.label, options, values });
    }
  }
  return cells;
}

/** "i/n" → { i, n }: shards are 0-based, i in 0..n-1; shard i runs the cells with index ≡ i (mod n). */
export function parseShard(s: string): { i: number; n: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new AbftError(`--shard ${s}: expected i/n, e.g. 0/4`, "BAD_ARGS");
  const i = Number(m[1]);
  const n = Number(m[2]);
  if (n < 1) throw new AbftError(`--shard ${s}: n must be at least 1`, "BAD_ARGS");
  if (i >= n) throw new AbftError(`--shard ${s}: i must be in 0..${n - 1} (shards are 0-based)`, "BAD_ARGS");
  return { i, n };
}

export function shardCells(cells: Cell[], i: number, n: number): Cell[] {
  return cells.filter((c) => c.index % n === i);
}

export function cellDir(spec: SweepSpec, cell: Cell): string {
  return join(spec.out, "cells", cell.id);
}

export type CellStatus = "done" | "partial" | "failed" | "todo";

export function cellStatus(dir: string): CellStatus {
  if (existsSync(join(dir, "summary.json"))) return "done";
  if (existsSync(join(dir, "failed.json"))) return "failed";
  if (existsSync(join(dir, "config.json"))) return "partial";
  return "todo";
}

/** The `abft run` arguments of a cell (without the executable). */
export function cellArgs(cell: Cell, table: RunOptionTable, dir: string, resume: boolean): string[] {
  const args = ["run"];
  for (const [k, v] of Object.entries(cell.options)) {
    const info = table.get(k);
    if (!info) continue;
    if (info.kind === "negatable") {
      if (v === false) args.push(`--no-${k}`);
    } else if (info.kind === "flag") {
      if (v === true) args.push(`--${k}`);
    } else args.push(`--${k}`, String(v));
  }
  // with --resume, `abft run` takes its settings from the run directory's config.json
  args.push(resume ? "--resume" : "--out", dir);
  return args;
}

// ---------------------------------------------------------------------------------------------
// Results of finished cells

export interface CellResult {
  accuracy_before: number | null;
  accuracy_after: number;
  train_seconds: number;
  run_dir: string;
}

export interface CellFailure {
  exit_code: number;
  signal: string | null;
  last_stderr: string;
  /** the run's "abft: error: ..." line, if it printed one */
  error: string | null;
  seconds: number;
  at: string;
}

export function readCellResult(dir: string): CellResult | null {
  const p = join(dir, "summary.json");
  if (!existsSync(p)) return null;
  try {
    const s = JSON.parse(readFileSync(p, "utf8"));
    return { accuracy_before: s.accuracy_before ?? null, accuracy_after: s.accuracy_after, train_seconds: s.train_seconds, run_dir: dir };
  } catch {
    return null;
  }
}

export function readCellFailure(dir: string): CellFailure | null {
  const p = join(dir, "failed.json");
  if (!existsSync(p) || existsSync(join(dir, "summary.json"))) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8"));
  } catch {
    return null;
  }
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

// ---------------------------------------------------------------------------------------------
// results.csv

export function csvColumns(spec: SweepSpec): string[] {
  return ["index", "cell", ...variedKeys(spec), "accuracy_before", "accuracy_after", "train_seconds", "run_dir"];
}

export function csvFields(spec: SweepSpec, cell: Cell, r: CellResult): (string | number | boolean | null)[] {
  return [cell.index, cell.id, ...variedKeys(spec).map((k) => cell.values[k]), r.accuracy_before, r.accuracy_after, r.train_seconds, r.run_dir];
}

export function csvLine(fields: readonly (string | number | boolean | null | undefined)[]): string {
  return (
    fields
      .map((f) => {
        const s = f === null || f === undefined ? "" : String(f);
        return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
      })
      .join(",") + "\n"
  );
}

/** RFC 4180 parser (quoted fields, doubled quotes); a last line without a newline is kept. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(field), (field = "");
    else if (c === "\n") row.push(field), rows.push(row), (row = []), (field = "");
    else if (c !== "\r") field += c;
  }
  if (field !== "" || row.length > 0) row.push(field), rows.push(row);
  return rows;
}

/** An append-only results file: the header is written once (exclusive create), rows are appended. */
export class ResultsCsv {
  private readonly ids = new Set<string>();

  private constructor(readonly path: string) {}

  static open(path: string, columns: string[]): ResultsCsv {
    mkdirSync(dirname(path), { recursive: true });
    const csv = new ResultsCsv(path);
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, csvLine(columns));
      closeSync(fd);
      return csv;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const text = readFileSync(path, "utf8");
    const rows = parseCsv(text);
    const header = rows[0] ?? [];
    if (header.join(",") !== columns.join(",")) {
      throw new AbftError(
        `${path} has the columns ${header.join(",")}, this spec's are ${columns.join(",")}`,
        "BAD_RESULTS",
        "run the sweep with --merge to rebuild it, or give the sweep another --out",
      );
    }
    // a row cut short by a crash has no newline: start the next row on a line of its own
    if (text.length > 0 && !text.endsWith("\n")) {
      appendFileSync(path, "\n");
      rows.pop();
    }
    const cellCol = header.indexOf("cell");
    for (const r of rows.slice(1)) if (r.length === header.length) csv.ids.add(r[cellCol]);
    return csv;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  append(id: string, fields: readonly (string | number | boolean | null)[]): void {
    appendFileSync(this.path, csvLine(fields));
    this.ids.add(id);
  }
}

// ---------------------------------------------------------------------------------------------
// summary.md

export function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

const pct = (x: number) => (100 * x).toFixed(2);
const mdEscape = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

function taskTitle(task: string): string {
  return /^[a-z0-9]+$/.test(task) ? task.toUpperCase() : basename(task).replace(/\.json$/i, "");
}

interface Entry {
  values: number[];
  expected: number;
}

function formatEntry(e: Entry | undefined): string {
  if (!e || e.values.length === 0) return "–";
  const m = pct(mean(e.values));
  const s = e.values.length > 1 ? ` ± ${pct(sampleStd(e.values))}` : "";
  const n = e.values.length < e.expected ? ` (${e.values.length}/${e.expected})` : "";
  return `${m}${s}${n}`;
}

export interface SummaryInput {
  spec: SweepSpec;
  cells: Cell[];
  table: RunOptionTable;
  results: Map<number, CellResult>;
  failures: Map<number, CellFailure>;
}

/**
 * The markdown summary: one row per model and method (every varied key but seed and task), a
 * "Vanilla" row per model (accuracy before training) when the runs evaluated before, one column
 * per task with mean ± sample std over seeds, then the mean over the tasks and the mean training
 * time.
 */
export function summaryMarkdown({ spec, cells, table, results, failures }: SummaryInput): string {
  // a variant's label stands for its options
  const gridKeys = new Set(spec.grids.flatMap((g) => Object.keys(g)));
  const keys = variedKeys(spec).filter((k) => k === "variant" || gridKeys.has(k));
  const rowKeys = keys.filter((k) => k !== "seed" && k !== "task");
  const methodKeys = rowKeys.filter((k) => k !== "model");
  // the "Vanilla" accuracy depends on the evaluation settings only, whatever varies them
  const evalKeys = [...EVAL_KEYS].filter((k) => k !== "task" && k !== "seed");
  const evalOf = (c: Cell) => evalKeys.map((k) => effectiveValue(c.options, k, table));
  const evalVaried = evalKeys.filter((k, i) => k !== "model" && new Set(cells.map((c) => JSON.stringify(evalOf(c)[i]))).size > 1);
  const taskOf = (c: Cell) => String(effectiveValue(c.options, "task", table) ?? "-");
  const modelOf = (c: Cell) => String(effectiveValue(c.options, "model", table) ?? "-");
  const seedOf = (c: Cell) => String(effectiveValue(c.options, "seed", table) ?? "-");
  const tasks: string[] = [];
  for (const c of cells) if (!tasks.includes(taskOf(c))) tasks.push(taskOf(c));

  const keyOf = (c: Cell, ks: string[]) => JSON.stringify([modelOf(c), ...ks.map((k) => c.values[k])]);
  const methodLabel = (c: Cell) => {
    const parts = methodKeys.map((k) => (k === "variant" ? String(c.variant) : describeValue(k, c.values[k], table)));
    if (!keys.includes("objective") && !spec.variants) parts.unshift(describeValue("objective", effectiveValue(c.options, "objective", table), table));
    return parts.join(", ");
  };

  interface Row {
    model: string;
    method: string;
    group: string;
    byTask: Map<string, Entry>;
    seconds: number[];
  }
  const groups: string[] = [];
  const methodRows = new Map<string, Row>();
  const vanilla = new Map<string, Row>();
  // Vanilla accuracies of one (model group, task, seed): every method evaluated the same prompts
  const vanillaSeen = new Map<string, { row: Row; task: string; xs: number[] }>();
  for (const c of cells) {
    const group = JSON.stringify(evalOf(c));
    if (!groups.includes(group)) groups.push(group);
    const rk = keyOf(c, rowKeys);
    let row = methodRows.get(rk);
    if (!row) methodRows.set(rk, (row = { model: shortModel(modelOf(c)), method: methodLabel(c), group, byTask: new Map(), seconds: [] }));
    const task = taskOf(c);
    const e = row.byTask.get(task) ?? { values: [], expected: 0 };
    row.byTask.set(task, e);
    e.expected++;
    const r = results.get(c.index);
    if (r) {
      e.values.push(r.accuracy_after);
      row.seconds.push(r.train_seconds);
    }
    let v = vanilla.get(group);
    if (!v) {
      const evalParts = evalVaried.map((k) => describeValue(k, effectiveValue(c.options, k, table), table));
      vanilla.set(group, (v = { model: row.model, method: ["Vanilla", ...evalParts].join(", "), group, byTask: new Map(), seconds: [] }));
    }
    const vk = JSON.stringify([group, task, seedOf(c)]);
    let vs = vanillaSeen.get(vk);
    if (!vs) {
      vanillaSeen.set(vk, (vs = { row: v, task, xs: [] }));
      const ve = v.byTask.get(task) ?? { values: [], expected: 0 };
      v.byTask.set(task, ve);
      ve.expected++;
    }
    if (r && r.accuracy_before !== null && r.accuracy_before !== undefined) vs.xs.push(r.accuracy_before);
  }
  for (const vs of vanillaSeen.values()) if (vs.xs.length) vs.row.byTask.get(vs.task)!.values.push(mean(vs.xs));

  const lines: string[] = [];
  lines.push(`# Sweep ${spec.name}`, "");
  if (spec.description) lines.push(spec.description, "");
  lines.push(
    "Accuracy (%) on the test prompts after training: mean ± sample standard deviation (n − 1) over seeds; " +
      "(n/N): only n of the N runs of that entry have finished. Vanilla: the same prompts before training. " +
      "Mean: the mean of the task columns (* when some task has no result yet). Train s: mean training seconds per run.",
    "",
  );
  const header = ["Model", "Method", ...tasks.map(taskTitle), "Mean", "Train s"];
  lines.push(`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);
  let starred = false;
  const emit = (row: Row, withTime: boolean) => {
    const perTask = tasks.map((t) => row.byTask.get(t));
    const means = perTask.filter((e) => e && e.values.length).map((e) => mean(e!.values));
    const relevant = perTask.filter((e) => e && e.expected > 0).length;
    let meanCell = "–";
    if (means.length) {
      meanCell = pct(mean(means));
      if (means.length < relevant) (meanCell += "*"), (starred = true);
    }
    const time = withTime && row.seconds.length ? mean(row.seconds).toFixed(1) : "–";
    lines.push(`| ${[row.model, row.method, ...perTask.map(formatEntry), meanCell, time].map(mdEscape).join(" | ")} |`);
  };
  for (const g of groups) {
    const v = vanilla.get(g)!;
    if ([...v.byTask.values()].some((e) => e.values.length)) emit(v, false);
    for (const row of methodRows.values()) if (row.group === g) emit(row, true);
  }
  lines.push("");
  if (starred) lines.push("\\* mean over the tasks that have results so far.", "");
  const done = cells.filter((c) => results.has(c.index)).length;
  const failed = cells.filter((c) => !results.has(c.index) && failures.has(c.index));
  lines.push(`Cells: ${done} of ${cells.length} finished, ${failed.length} failed, ${cells.length - done - failed.length} not finished. Every finished cell is a row of results.csv.`, "");
  if (failed.length) {
    lines.push("## Failed cells", "", "| # | cell | exit | error (else the last line of stderr) |", "|---:|---|---:|---|");
    for (const c of failed) {
      const f = failures.get(c.index)!;
      lines.push(`| ${c.index} | ${c.id} | ${f.signal ? `${f.exit_code} (${f.signal})` : f.exit_code} | ${mdEscape(f.error ?? f.last_stderr)} |`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Running

/** The command line that runs this same abft: the compiled executable alone, or bun + main.ts. */
export function selfCommand(): string[] {
  const main = Bun.main;
  const compiled = main.startsWith("/$bunfs/") || /^[A-Za-z]:[\\/]~BUN[\\/]/.test(main);
  return compiled ? [process.execPath] : [process.execPath, main];
}

export interface CellProcessResult {
  code: number;
  signal: string | null;
  lastStderr: string;
  /** the last "abft: error: ..." line, when there is one (the last line is often its hint) */
  errorLine: string | null;
  seconds: number;
}

/** Runs one cell's command, appending its stdout and stderr to logFile (and to ours with echo). */
export async function runCellProcess(argv: string[], logFile: string, echo = false): Promise<CellProcessResult> {
  mkdirSync(dirname(logFile), { recursive: true });
  appendFileSync(logFile, `=== abft sweep, ${new Date().toISOString()}: ${argv.join(" ")}\n`);
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let tail = "";
  const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      appendFileSync(logFile, chunk);
      if (echo) (isErr ? process.stderr : process.stdout).write(chunk);
      if (isErr) tail = (tail + dec.decode(chunk, { stream: true })).slice(-8192);
    }
  };
  await Promise.all([pump(proc.stdout, false), pump(proc.stderr, true)]);
  await proc.exited;
  const signal = proc.signalCode ? String(proc.signalCode) : null;
  // killed by a signal: the shell's convention, 128 + the signal's number
  const code = proc.exitCode ?? 128 + ((signal && (osConstants.signals as Record<string, number>)[signal]) || 0);
  const lines = tail.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const errorLine = lines.findLast((l) => l.startsWith("abft: error:")) ?? null;
  return { code, signal, lastStderr: lines.at(-1) ?? "", errorLine, seconds: (performance.now() - t0) / 1000 };
}

export interface SweepRunOptions {
  /** the executable (and script) that runs `abft`; default selfCommand() */
  self?: string[];
  shard?: { i: number; n: number };
  /** run only the cell with this index */
  cell?: number;
  /** leave cells whose last attempt failed alone (default: retry them) */
  skipFailed?: boolean;
  /** copy each cell's output to ours */
  echo?: boolean;
  log?: (line: string) => void;
}

export interface SweepReport {
  total: number;
  selected: number;
  /** finished before this sweep started */
  skipped: number;
  ran: number;
  finished: number;
  failed: { cell: Cell; failure: CellFailure }[];
  csv: string | null;
  summary: string | null;
}

function collect(spec: SweepSpec, cells: Cell[]) {
  const results = new Map<number, CellResult>();
  const failures = new Map<number, CellFailure>();
  for (const c of cells) {
    const dir = cellDir(spec, c);
    const r = readCellResult(dir);
    if (r) results.set(c.index, r);
    else {
      const f = readCellFailure(dir);
      if (f) failures.set(c.index, f);
    }
  }
  return { results, failures };
}

function writeSummary(spec: SweepSpec, cells: Cell[], table: RunOptionTable): string {
  const path = join(spec.out, "summary.md");
  writeAtomic(path, summaryMarkdown({ spec, cells, table, ...collect(spec, cells) }));
  return path;
}

/** Runs the spec's cells (all, one shard, or one), each as `abft run` in a subprocess. */
export async function runSweep(spec: SweepSpec, table: RunOptionTable, o: SweepRunOptions = {}): Promise<SweepReport> {
  const log = o.log ?? ((l: string) => console.error(l));
  const self = o.self ?? selfCommand();
  const cells = expandCells(spec, table);
  let selected = cells;
  if (o.cell !== undefined) {
    if (!Number.isInteger(o.cell) || o.cell < 0 || o.cell >= cells.length) throw new AbftError(`--cell ${o.cell}: the spec has cells 0..${cells.length - 1}`, "BAD_ARGS");
    selected = [cells[o.cell]];
  } else if (o.shard) selected = shardCells(cells, o.shard.i, o.shard.n);
  const whole = o.cell === undefined && !o.shard;
  const csvPath = o.cell !== undefined ? null : whole ? join(spec.out, "results.csv") : join(spec.out, `results.shard-${o.shard!.i}-of-${o.shard!.n}.csv`);
  mkdirSync(join(spec.out, "cells"), { recursive: true });
  const csv = csvPath ? ResultsCsv.open(csvPath, csvColumns(spec)) : null;

  const report: SweepReport = { total: cells.length, selected: selected.length, skipped: 0, ran: 0, finished: 0, failed: [], csv: csvPath, summary: null };
  const counts = { done: 0, failed: 0, partial: 0, todo: 0 };
  for (const c of selected) counts[cellStatus(cellDir(spec, c))]++;
  const part = o.cell !== undefined ? `cell ${o.cell}` : o.shard ? `shard ${o.shard.i}/${o.shard.n}: ${selected.length} cells` : `${cells.length} cells`;
  log(`abft: sweep ${spec.name}: ${part}; ${counts.done} done, ${counts.partial} interrupted, ${counts.failed} failed, ${counts.todo} not started; in ${spec.out}`);

  // cells finished by other processes (shards, Slurm tasks, an earlier results.csv) get their rows
  for (const c of selected) {
    const r = readCellResult(cellDir(spec, c));
    if (r && csv && !csv.has(c.id)) csv.append(c.id, csvFields(spec, c, r));
  }

  for (const [n, c] of selected.entries()) {
    const dir = cellDir(spec, c);
    const status = cellStatus(dir);
    const tag = `abft: sweep [${n + 1}/${selected.length}] cell ${c.index} ${c.id}`;
    if (status === "done") {
      report.skipped++;
      continue;
    }
    if (status === "failed" && o.skipFailed) {
      log(`${tag}: failed before; skipped (--skip-failed)`);
      report.failed.push({ cell: c, failure: readCellFailure(dir)! });
      continue;
    }
    rmSync(join(dir, "failed.json"), { force: true });
    const resume = existsSync(join(dir, "config.json"));
    log(`${tag}: ${resume ? "resuming" : "running"}`);
    const res = await runCellProcess([...self, ...cellArgs(c, table, dir, resume)], join(dir, "sweep.log"), o.echo);
    report.ran++;
    const r = readCellResult(dir);
    if (r) {
      report.finished++;
      csv?.append(c.id, csvFields(spec, c, r));
      const before = r.accuracy_before === null ? "" : `${pct(r.accuracy_before)}% → `;
      const warn = res.code !== 0 ? ` (but the run exited with ${res.code}: ${res.lastStderr})` : "";
      log(`${tag}: done in ${res.seconds.toFixed(1)} s, accuracy ${before}${pct(r.accuracy_after)}%${warn}`);
      if (whole) report.summary = writeSummary(spec, cells, table);
    } else {
      const failure: CellFailure = {
        exit_code: res.code,
        signal: res.signal,
        last_stderr: res.code === 0 && !res.lastStderr ? "exited 0 without writing summary.json" : res.lastStderr,
        error: res.errorLine,
        seconds: res.seconds,
        at: new Date().toISOString(),
      };
      mkdirSync(dir, { recursive: true });
      writeAtomic(join(dir, "failed.json"), JSON.stringify(failure, null, 2) + "\n");
      report.failed.push({ cell: c, failure });
      log(`${tag}: FAILED (exit ${res.code}${res.signal ? `, ${res.signal}` : ""}): ${failure.error ?? failure.last_stderr}; log ${join(dir, "sweep.log")}`);
    }
  }
  if (whole) report.summary = writeSummary(spec, cells, table);
  return report;
}

export interface MergeReport {
  csv: string;
  summary: string;
  finished: number;
  failed: number;
  total: number;
}

/** Rebuilds results.csv (rows in cell order) and summary.md from every cell's run directory. */
export function mergeSweep(spec: SweepSpec, table: RunOptionTable): MergeReport {
  const cells = expandCells(spec, table);
  const { results, failures } = collect(spec, cells);
  const csvPath = join(spec.out, "results.csv");
  let text = csvLine(csvColumns(spec));
  for (const c of cells) {
    const r = results.get(c.index);
    if (r) text += csvLine(csvFields(spec, c, r));
  }
  writeAtomic(csvPath, text);
  const summary = join(spec.out, "summary.md");
  writeAtomic(summary, summaryMarkdown({ spec, cells, table, results, failures }));
  return { csv: csvPath, summary, finished: results.size, failed: failures.size, total: cells.length };
}
