// `abft sweep SPEC.json`: a grid of `abft run` settings, run unattended, one subprocess per cell
// (so GPU memory is freed between cells and a crashing cell does not stop the sweep), resumable,
// results appended to results.csv and summarised in summary.md (src/analysis/sweep.ts has the spec
// format). On a cluster: `--shard i/n` runs one part, `--slurm` writes an sbatch array and a merge
// step (src/analysis/slurm.ts), `--merge` rebuilds results.csv and summary.md from the cells.
import { Command } from "commander";
import { resolve } from "node:path";
import { arrayScript, arrayTasks, mergeScript, submit, submitCommands, writeSlurmScripts, type SlurmOptions } from "../analysis/slurm.ts";
import { mergeSweep, runSweep, selfCommand } from "../analysis/sweep.ts";
import { cellArgs, cellDir, cellStatus, expandCells, parseShard, shardCells } from "../analysis/sweep_cells.ts";
import { loadSpec, runOptionTable, type RunOptionTable } from "../analysis/sweep_spec.ts";
import { AbftError } from "../gpu/errors.ts";
import { intOption } from "./load.ts";
import { say } from "./progress.ts";
import { registerRun } from "./run.ts";

interface SweepOptions {
  out?: string;
  dryRun?: boolean;
  shard?: string;
  cell?: number;
  merge?: boolean;
  skipFailed?: boolean;
  verbose?: boolean;
  slurm?: boolean;
  slurmShards?: number;
  slurmMaxParallel?: number;
  partition?: string;
  gres?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  account?: string;
  qos?: string;
  sbatch?: string[];
  submit?: boolean;
}

/** The options of `abft run`, from its own definition (so the two never disagree). */
export function abftRunOptions(): RunOptionTable {
  const p = new Command();
  registerRun(p);
  return runOptionTable(p.commands.find((c) => c.name() === "run")!);
}

const SLURM_ONLY = ["slurmShards", "slurmMaxParallel", "partition", "gres", "time", "cpusPerTask", "mem", "account", "qos", "submit"] as const;

export async function sweepCommand(specPath: string, o: SweepOptions): Promise<void> {
  const modes = [o.shard !== undefined && "--shard", o.cell !== undefined && "--cell", o.merge && "--merge", o.slurm && "--slurm"].filter(Boolean);
  if (modes.length > 1) throw new AbftError(`${modes.join(" and ")} do not go together`, "BAD_ARGS");
  if (!o.slurm) {
    const stray = SLURM_ONLY.filter((k) => o[k] !== undefined && o[k] !== false);
    if (stray.length || o.sbatch) throw new AbftError(`--${(stray[0] ?? "sbatch").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only goes with --slurm`, "BAD_ARGS");
  }
  const table = abftRunOptions();
  const spec = loadSpec(specPath, table);
  if (o.out) spec.out = o.out;
  const cells = expandCells(spec, table);

  if (o.merge) {
    const m = mergeSweep(spec, table);
    say(`abft: sweep ${spec.name}: ${m.finished} of ${m.total} cells finished, ${m.failed} failed`);
    console.log(`${m.csv}\n${m.summary}`);
    return;
  }

  if (o.slurm) {
    const so: SlurmOptions = {
      self: selfCommand(),
      spec: resolve(specPath),
      out: resolve(spec.out),
      workdir: process.cwd(),
      name: spec.name,
      cells: cells.length,
      shards: o.slurmShards,
      maxParallel: o.slurmMaxParallel,
      partition: o.partition,
      gres: o.gres,
      time: o.time,
      cpusPerTask: o.cpusPerTask,
      mem: o.mem,
      account: o.account,
      qos: o.qos,
      extra: o.sbatch ?? [],
      sweepArgs: o.skipFailed ? ["--skip-failed"] : [],
    };
    if (o.dryRun) {
      console.log(`# ${so.out}/sweep.sbatch\n${arrayScript(so)}\n# ${so.out}/merge.sbatch\n${mergeScript(so)}`);
      return;
    }
    if (arrayTasks(so) > 1000) say(`abft: warning: ${arrayTasks(so)} array tasks; Slurm's default MaxArraySize allows 1000 (ask \`scontrol show config | grep MaxArraySize\`), --slurm-shards n makes fewer`);
    const files = writeSlurmScripts(so);
    say(`abft: sweep ${spec.name}: ${cells.length} cells in ${arrayTasks(so)} array tasks; wrote ${files.sweep} and ${files.merge}`);
    if (o.submit) {
      const ids = submit(files);
      console.log(`submitted array job ${ids.array} and merge job ${ids.merge} (after the array)`);
      say(`abft: follow with: squeue -j ${ids.array},${ids.merge}; logs in ${files.logs}; results in ${so.out}/results.csv and summary.md when the merge job has run`);
    } else {
      console.log(["# submit the array, then the merge step after it:", ...submitCommands(files)].join("\n"));
    }
    return;
  }

  const shard = o.shard !== undefined ? parseShard(o.shard) : undefined;
  if (o.dryRun) {
    let list = shard ? shardCells(cells, shard.i, shard.n) : cells;
    if (o.cell !== undefined) {
      if (o.cell >= cells.length) throw new AbftError(`--cell ${o.cell}: the spec has cells 0..${cells.length - 1}`, "BAD_ARGS");
      list = [cells[o.cell]];
    }
    const rows = list.map((c) => {
      const dir = cellDir(spec, c);
      const status = cellStatus(dir);
      return [String(c.index), status, c.id, cellArgs(c, table, dir, status === "partial").join(" ")];
    });
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ["index", "status", "cell"][i].length));
    console.log([["index", "status", "cell", "command (abft ...)"], ...rows].map((r) => r.map((x, i) => (i < 3 ? x.padEnd(w[i]) : x)).join("  ")).join("\n"));
    say(`abft: sweep ${spec.name}: ${list.length} of ${cells.length} cells${shard ? ` in shard ${shard.i}/${shard.n}` : ""}; out ${spec.out}`);
    return;
  }

  const report = await runSweep(spec, table, { shard, cell: o.cell, skipFailed: o.skipFailed, echo: o.verbose });
  const where = [report.csv && `results ${report.csv}`, report.summary && `summary ${report.summary}`].filter(Boolean).join(", ");
  say(`abft: sweep ${spec.name}: ${report.ran} ran, ${report.skipped} were done already, ${report.failed.length} failed${where ? `; ${where}` : ""}`);
  if (report.failed.length) {
    const list = report.failed.map((f) => `${f.cell.index} ${f.cell.id} (exit ${f.failure.exit_code})`).join(", ");
    throw new AbftError(
      `${report.failed.length} of ${report.selected} cells failed: ${list}`,
      "SWEEP_FAILED",
      "each cell's output is in <out>/cells/<id>/sweep.log; run the same command again to retry the failed cells (finished ones are skipped)",
    );
  }
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

export function registerSweep(program: Command): void {
  program
    .command("sweep")
    .description("run a grid of `abft run` settings (SPEC.json) unattended and resumably; results.csv and a summary table of mean ± std over seeds")
    .argument("<spec.json>", "the sweep spec: name, base options, grid of options, optional variants, out folder")
    .option("--out <dir>", "output folder (default: the spec's out, or sweeps/<name>)")
    .option("--dry-run", "list the cells (index, status, id, command) and run nothing")
    .option("--shard <i/n>", "run only the cells whose index ≡ i (mod n); shards are 0-based (0/4 .. 3/4)")
    .option("--cell <index>", "run only the cell with this index (0-based; what a Slurm array task runs)", intOption("--cell", 0))
    .option("--merge", "rebuild results.csv and summary.md from all cells' run directories (after shards or Slurm)")
    .option("--skip-failed", "do not retry cells whose last attempt failed")
    .option("--verbose", "show each cell's own output (it always goes to <out>/cells/<id>/sweep.log)")
    .option("--slurm", "write <out>/sweep.sbatch (an array job) and <out>/merge.sbatch; runs nothing")
    .option("--slurm-shards <n>", "with --slurm: one array task per shard instead of per cell", intOption("--slurm-shards", 1))
    .option("--slurm-max-parallel <n>", "with --slurm: at most n array tasks at once", intOption("--slurm-max-parallel", 1))
    .option("--partition <name>", "with --slurm: #SBATCH --partition")
    .option("--gres <gres>", "with --slurm: #SBATCH --gres of each array task, e.g. gpu:1")
    .option("--time <limit>", "with --slurm: #SBATCH --time of each array task, e.g. 04:00:00")
    .option("--cpus-per-task <n>", "with --slurm: #SBATCH --cpus-per-task", intOption("--cpus-per-task", 1))
    .option("--mem <size>", "with --slurm: #SBATCH --mem, e.g. 64G")
    .option("--account <name>", "with --slurm: #SBATCH --account")
    .option("--qos <name>", "with --slurm: #SBATCH --qos")
    .option("--sbatch <option>", "with --slurm: one more #SBATCH line for the array, e.g. --sbatch=--constraint=h100 (repeatable)", collect)
    .option("--submit", "with --slurm: submit the array with sbatch, and the merge job after it (afterany)")
    .action(async (spec: string, o: SweepOptions) => sweepCommand(spec, o));
}
