// Sweep cells: the expansion of a spec into its cells (order, merged options, varied values), cell
// ids (readable slug + hash, see sweep.ts), shards, a cell's run directory and status, and the
// `abft run` arguments of a cell.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { AbftError } from "../gpu/errors.ts";
import { SpecError, shortModel, type OptionValue, type Options, type RunOptionTable, type SweepSpec } from "./sweep_spec.ts";

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
