// Slurm scripts for a sweep: an sbatch array (one task per cell, or per shard) whose tasks call
// this same abft with `sweep SPEC --cell $SLURM_ARRAY_TASK_ID` (or `--shard $SLURM_ARRAY_TASK_ID/n`),
// and a merge job, run after the array (afterany: also when some tasks failed), that rebuilds
// results.csv and summary.md with `sweep SPEC --merge`. Nothing is submitted unless asked.
//
//   <out>/sweep.sbatch     the array
//   <out>/merge.sbatch     the merge step
//   <out>/slurm/           %A_%a.out / %A_%a.err of every array task, merge_%j.out
//
// Paths in the scripts are absolute, and the jobs start in the directory the sweep was written from
// (--chdir), so relative paths in the spec mean the same on the compute nodes (which must share the
// file system). Slurm needs the output folder to exist before the job starts: it is created here.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AbftError } from "../gpu/errors.ts";

export interface SlurmOptions {
  /** the command that runs abft (absolute paths): the executable, or bun + main.ts */
  self: string[];
  /** absolute path of the spec file */
  spec: string;
  /** absolute path of the sweep's output folder */
  out: string;
  /** absolute path the jobs start in */
  workdir: string;
  name: string;
  cells: number;
  /** one array task per shard (cells index ≡ task id mod shards) instead of one per cell */
  shards?: number;
  /** at most this many array tasks at once (the %n of --array) */
  maxParallel?: number;
  partition?: string;
  gres?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  account?: string;
  qos?: string;
  /** more sbatch options for the array, written as they are (e.g. "--constraint=h100") */
  extra?: string[];
  /** more arguments for every array task's `abft sweep` (e.g. --skip-failed) */
  sweepArgs?: string[];
}

/** Single-quotes a word for bash. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function checkPath(what: string, p: string): void {
  if (/\s/.test(p)) throw new AbftError(`${what} ${p}: sbatch scripts need paths without spaces`, "BAD_ARGS", "move the sweep (or --out) to a path without spaces");
}

function commonLines(o: SlurmOptions, withResources: boolean): string[] {
  const l: string[] = [];
  l.push(`#SBATCH --chdir=${o.workdir}`);
  if (o.partition) l.push(`#SBATCH --partition=${o.partition}`);
  if (o.account) l.push(`#SBATCH --account=${o.account}`);
  if (o.qos) l.push(`#SBATCH --qos=${o.qos}`);
  if (withResources) {
    if (o.gres) l.push(`#SBATCH --gres=${o.gres}`);
    if (o.time) l.push(`#SBATCH --time=${o.time}`);
    if (o.cpusPerTask) l.push(`#SBATCH --cpus-per-task=${o.cpusPerTask}`);
    if (o.mem) l.push(`#SBATCH --mem=${o.mem}`);
    for (const e of o.extra ?? []) l.push(`#SBATCH ${e}`);
  }
  return l;
}

/** The number of array tasks: cells, or shards. */
export function arrayTasks(o: SlurmOptions): number {
  return o.shards ? Math.min(o.shards, o.cells) : o.cells;
}

/** The text of sweep.sbatch. */
export function arrayScript(o: SlurmOptions): string {
  for (const [w, p] of [["spec", o.spec], ["out", o.out], ["working directory", o.workdir]] as const) checkPath(w, p);
  if (o.cells < 1) throw new AbftError(`sweep ${o.name} has no cells`, "BAD_SPEC");
  if (o.shards !== undefined && (!Number.isInteger(o.shards) || o.shards < 1)) throw new AbftError(`--slurm-shards ${o.shards}: must be a positive integer`, "BAD_ARGS");
  const n = arrayTasks(o);
  const throttle = o.maxParallel ? `%${o.maxParallel}` : "";
  const which = o.shards ? `--shard "$SLURM_ARRAY_TASK_ID/${n}"` : `--cell "$SLURM_ARRAY_TASK_ID"`;
  const cmd = [...o.self, "sweep", o.spec, "--out", o.out].map(shellQuote).join(" ");
  const extraArgs = (o.sweepArgs ?? []).map(shellQuote).join(" ");
  return [
    "#!/bin/bash",
    `# abft sweep ${o.name}: ${o.cells} cells, ${o.shards ? `${n} array tasks of one shard each (cells with index ≡ task id mod ${n})` : "one array task per cell (task id = cell index)"}.`,
    "# Written by `abft sweep --slurm`. Submit the array, then the merge step after it:",
    `#   jobid=$(sbatch --parsable ${shellQuote(join(o.out, "sweep.sbatch"))}) && sbatch --dependency=afterany:\${jobid%%;*} ${shellQuote(join(o.out, "merge.sbatch"))}`,
    `#SBATCH --job-name=abft-${o.name}`,
    `#SBATCH --array=0-${n - 1}${throttle}`,
    `#SBATCH --output=${join(o.out, "slurm", "%A_%a.out")}`,
    `#SBATCH --error=${join(o.out, "slurm", "%A_%a.err")}`,
    ...commonLines(o, true),
    "set -eu",
    `exec ${cmd} ${which}${extraArgs ? ` ${extraArgs}` : ""}`,
    "",
  ].join("\n");
}

/** The text of merge.sbatch: needs no GPU and little time. */
export function mergeScript(o: SlurmOptions): string {
  for (const [w, p] of [["spec", o.spec], ["out", o.out], ["working directory", o.workdir]] as const) checkPath(w, p);
  const cmd = [...o.self, "sweep", o.spec, "--out", o.out, "--merge"].map(shellQuote).join(" ");
  return [
    "#!/bin/bash",
    `# abft sweep ${o.name}: rebuilds results.csv and summary.md from the cells' run directories.`,
    "# Submit after the array job: sbatch --dependency=afterany:<array job id> merge.sbatch",
    `#SBATCH --job-name=abft-${o.name}-merge`,
    `#SBATCH --output=${join(o.out, "slurm", "merge_%j.out")}`,
    ...commonLines(o, false),
    "set -eu",
    `exec ${cmd}`,
    "",
  ].join("\n");
}

export interface SlurmFiles {
  sweep: string;
  merge: string;
  logs: string;
}

export function writeSlurmScripts(o: SlurmOptions): SlurmFiles {
  const files = { sweep: join(o.out, "sweep.sbatch"), merge: join(o.out, "merge.sbatch"), logs: join(o.out, "slurm") };
  const array = arrayScript(o);
  const merge = mergeScript(o);
  mkdirSync(files.logs, { recursive: true });
  writeFileSync(files.sweep, array, { mode: 0o755 });
  writeFileSync(files.merge, merge, { mode: 0o755 });
  return files;
}

/** The commands a person runs to submit (what --submit does). */
export function submitCommands(f: SlurmFiles): string[] {
  return [`jobid=$(sbatch --parsable ${shellQuote(f.sweep)})`, `sbatch --dependency=afterany:\${jobid%%;*} ${shellQuote(f.merge)}`];
}

/** `sbatch --parsable` prints "jobid" or "jobid;cluster". */
export function parseJobId(out: string): string {
  const id = out.trim().split("\n").at(-1)!.split(";")[0].trim();
  if (!/^\d+$/.test(id)) throw new AbftError(`sbatch printed '${out.trim()}', not a job id`, "SLURM");
  return id;
}

function sbatch(args: string[]): string {
  let p;
  try {
    p = Bun.spawnSync(["sbatch", "--parsable", ...args], { stdout: "pipe", stderr: "pipe" });
  } catch {
    throw new AbftError("sbatch not found", "SLURM", "run on a Slurm login node, or submit the written scripts there");
  }
  if (p.exitCode !== 0) throw new AbftError(`sbatch ${args.join(" ")} failed: ${p.stderr.toString().trim().split("\n").at(-1)}`, "SLURM");
  return parseJobId(p.stdout.toString());
}

/** Submits the array, then the merge job after it (afterany); returns both job ids. */
export function submit(f: SlurmFiles): { array: string; merge: string } {
  const array = sbatch([f.sweep]);
  const merge = sbatch([`--dependency=afterany:${array}`, f.merge]);
  return { array, merge };
}
