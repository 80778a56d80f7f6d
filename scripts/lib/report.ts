// Benchmark output: an aligned table on stdout (with the adapter) and the same rows as JSON in
// bench-results/<suite>-<time>.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Runtime } from "../../src/gpu/runtime.ts";
import { adapterLine } from "../../src/gpu/device.ts";

export type Row = Record<string, string | number | null | undefined>;

export function printTable(title: string, rt: Runtime, rows: Row[]): void {
  console.log(`${title} on ${adapterLine(rt.gpu.adapter)}`);
  if (rows.length === 0) return void console.log("(no rows)");
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: Row[string]) => (v === null || v === undefined ? "" : typeof v === "number" ? fmt(v) : v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(line(cols));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

export function writeResults(suite: string, rt: Runtime, rows: Row[], extra: Record<string, unknown> = {}): string {
  mkdirSync("bench-results", { recursive: true });
  const file = join("bench-results", `${suite}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ suite, adapter: rt.gpu.adapter, features: rt.gpu.features, ...extra, results: rows }, null, 2));
  console.log(`wrote ${file}`);
  return file;
}

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
