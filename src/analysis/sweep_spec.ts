// Sweep specs: the `abft run` option table (read from its commander definition), and the parsing
// and validation of a spec file (format in sweep.ts), down to one-line errors naming the key.
// Also how an option value reads in a label (describeValue), which a variant's default label uses.
import type { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
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
// Labels

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
