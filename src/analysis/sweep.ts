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
//
// This file runs the cells and merges their results; the pieces are in sweep_spec.ts (the option
// table, spec parsing), sweep_cells.ts (cells, ids, shards), sweep_results.ts (a cell's result,
// results.csv) and sweep_summary.ts (summary.md).
import { appendFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname, join } from "node:path";
import { AbftError } from "../gpu/errors.ts";
import { cellArgs, cellDir, cellStatus, expandCells, shardCells, type Cell } from "./sweep_cells.ts";
import { csvColumns, csvFields, csvLine, readCellFailure, readCellResult, ResultsCsv, writeAtomic, type CellFailure, type CellResult } from "./sweep_results.ts";
import type { RunOptionTable, SweepSpec } from "./sweep_spec.ts";
import { pct, summaryMarkdown } from "./sweep_summary.ts";

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
