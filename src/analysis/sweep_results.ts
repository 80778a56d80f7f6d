// Sweep results: what a finished cell (summary.json) or a failed one (failed.json) left in its run
// directory, and results.csv: its columns and rows, an RFC 4180 writer and parser, and the
// append-only file that each sweep (or shard) adds rows to as cells finish.
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { AbftError } from "../gpu/errors.ts";
import { variedKeys, type Cell } from "./sweep_cells.ts";
import type { SweepSpec } from "./sweep_spec.ts";

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

/** Writes a file whole or not at all (a temporary file renamed over it). */
export function writeAtomic(path: string, text: string): void {
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
