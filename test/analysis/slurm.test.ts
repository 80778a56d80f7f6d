// `abft sweep --slurm`: the sbatch text, and the array run end to end on a real single-node Slurm
// (Debian's slurm-wlm: munged, slurmctld and slurmd on localhost, started here in a temporary
// folder with their own ports, no cgroups, no accounting) with a tiny spec of two real cells on
// babygpt2, submitted with --submit; the merge job then writes results.csv and summary.md.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { arrayScript, mergeScript, parseJobId, shellQuote, submitCommands, writeSlurmScripts, type SlurmOptions } from "../../src/analysis/slurm.ts";
import { parseCsv } from "../../src/analysis/sweep_results.ts";
import { SHARED } from "../helpers.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");

const base: SlurmOptions = {
  self: ["/opt/bun/bin/bun", "/src/abft/src/cli/main.ts"],
  spec: "/home/me/table4.json",
  out: "/scratch/sweeps/table4",
  workdir: "/home/me",
  name: "table4",
  cells: 400,
};

const bashSyntaxOk = (text: string) => {
  const p = Bun.spawnSync(["bash", "-n"], { stdin: new TextEncoder().encode(text), stderr: "pipe" });
  return p.exitCode === 0 ? "ok" : p.stderr.toString();
};

describe("sbatch scripts", () => {
  test("one array task per cell: range, logs, resources, the same binary with --cell", () => {
    const s = arrayScript({ ...base, partition: "gpu", gres: "gpu:1", time: "04:00:00", cpusPerTask: 8, mem: "64G", account: "lab", qos: "normal", maxParallel: 16, extra: ["--constraint=h100"] });
    const lines = s.split("\n");
    expect(lines[0]).toBe("#!/bin/bash");
    const sb = lines.filter((l) => l.startsWith("#SBATCH "));
    expect(sb).toEqual([
      "#SBATCH --job-name=abft-table4",
      "#SBATCH --array=0-399%16",
      "#SBATCH --output=/scratch/sweeps/table4/slurm/%A_%a.out",
      "#SBATCH --error=/scratch/sweeps/table4/slurm/%A_%a.err",
      "#SBATCH --chdir=/home/me",
      "#SBATCH --partition=gpu",
      "#SBATCH --account=lab",
      "#SBATCH --qos=normal",
      "#SBATCH --gres=gpu:1",
      "#SBATCH --time=04:00:00",
      "#SBATCH --cpus-per-task=8",
      "#SBATCH --mem=64G",
      "#SBATCH --constraint=h100",
    ]);
    // sbatch stops reading #SBATCH lines at the first command
    expect(lines.findIndex((l) => l === "set -eu")).toBeGreaterThan(lines.findLastIndex((l) => l.startsWith("#SBATCH")));
    expect(lines.at(-2)).toBe('exec /opt/bun/bin/bun /src/abft/src/cli/main.ts sweep /home/me/table4.json --out /scratch/sweeps/table4 --cell "$SLURM_ARRAY_TASK_ID"');
    expect(bashSyntaxOk(s)).toBe("ok");
  });

  test("one array task per shard; a compiled binary alone; more sweep arguments", () => {
    const s = arrayScript({ ...base, self: ["/opt/abft"], shards: 8, sweepArgs: ["--skip-failed"] });
    expect(s).toContain("#SBATCH --array=0-7\n");
    expect(s).toContain('exec /opt/abft sweep /home/me/table4.json --out /scratch/sweeps/table4 --shard "$SLURM_ARRAY_TASK_ID/8" --skip-failed\n');
    expect(s).not.toContain("--gres");
    // more shards than cells: one task per cell
    expect(arrayScript({ ...base, cells: 3, shards: 8 })).toContain("#SBATCH --array=0-2\n");
    expect(bashSyntaxOk(s)).toBe("ok");
  });

  test("the merge job: --merge, same partition and account, no GPU; the submit commands chain it with afterany", () => {
    const m = mergeScript({ ...base, partition: "gpu", gres: "gpu:1", time: "04:00:00", account: "lab" });
    expect(m).toContain("#SBATCH --job-name=abft-table4-merge\n");
    expect(m).toContain("#SBATCH --output=/scratch/sweeps/table4/slurm/merge_%j.out\n");
    expect(m).toContain("#SBATCH --partition=gpu\n#SBATCH --account=lab\n");
    expect(m).not.toContain("--gres");
    expect(m).not.toContain("--time");
    expect(m.trim().split("\n").at(-1)).toBe("exec /opt/bun/bin/bun /src/abft/src/cli/main.ts sweep /home/me/table4.json --out /scratch/sweeps/table4 --merge");
    expect(bashSyntaxOk(m)).toBe("ok");
    const cmds = submitCommands({ sweep: "/s/sweep.sbatch", merge: "/s/merge.sbatch", logs: "/s/slurm" });
    expect(cmds).toEqual(["jobid=$(sbatch --parsable /s/sweep.sbatch)", "sbatch --dependency=afterany:${jobid%%;*} /s/merge.sbatch"]);
    expect(bashSyntaxOk(cmds.join("\n"))).toBe("ok");
  });

  test("quoting, job ids, paths with spaces, files written with the log folder", () => {
    expect(shellQuote("a/b-c_d.e")).toBe("a/b-c_d.e");
    expect(shellQuote("it's $x")).toBe(`'it'\\''s $x'`);
    expect(parseJobId("1234\n")).toBe("1234");
    expect(parseJobId("1234;cluster\n")).toBe("1234");
    expect(() => parseJobId("sbatch: error: nope")).toThrow("not a job id");
    expect(() => arrayScript({ ...base, out: "/my sweeps/x" })).toThrow("paths without spaces");
    const dir = mkdtempSync(join(tmpdir(), "abft-sbatch-"));
    try {
      const f = writeSlurmScripts({ ...base, out: dir });
      expect(existsSync(f.logs)).toBe(true);
      expect(readFileSync(f.sweep, "utf8")).toBe(arrayScript({ ...base, out: dir }));
      expect(readFileSync(f.merge, "utf8")).toBe(mergeScript({ ...base, out: dir }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A single-node Slurm, started and stopped by this test

const SBIN_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;
const tool = (name: string) => Bun.which(name, { PATH: SBIN_PATH });

interface Cluster {
  dir: string;
  env: Record<string, string>;
  procs: { name: string; proc: ReturnType<typeof Bun.spawn> }[];
}

function run(cluster: Cluster, argv: string[]) {
  const p = Bun.spawnSync(argv, { env: cluster.env, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function logs(dir: string): string {
  if (!existsSync(join(dir, "log"))) return "";
  return readdirSync(join(dir, "log"))
    .sort()
    .map((f) => join(dir, "log", f))
    .map((f) => `--- ${f}\n${readFileSync(f, "utf8").trim().split("\n").slice(-15).join("\n")}`)
    .join("\n");
}

async function startSlurm(): Promise<Cluster> {
  const missing = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol"].filter((b) => !tool(b));
  if (missing.length) throw new Error(`Slurm is not installed (missing ${missing.join(", ")}): apt-get install slurm-wlm (.ci/run installs it)`);
  const dir = mkdtempSync(join(tmpdir(), "abft-slurm-"));
  chmodSync(dir, 0o700);
  for (const d of ["munge", "state", "spool", "log"]) mkdirSync(join(dir, d), { mode: 0o700 });
  const key = join(dir, "munge", "munge.key");
  writeFileSync(key, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o400 });
  const sock = join(dir, "munge", "munge.sock");
  // os.userInfo() reads $USER, which a CI shell may not set
  const user = Bun.spawnSync(["id", "-un"]).stdout.toString().trim() || userInfo().username;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = [
    "ClusterName=abfttest",
    "SlurmctldHost=localhost",
    `SlurmctldPort=${port}`,
    `SlurmdPort=${port + 1}`,
    `SlurmUser=${user}`,
    `SlurmdUser=${user}`,
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${sock}`,
    `StateSaveLocation=${join(dir, "state")}`,
    `SlurmdSpoolDir=${join(dir, "spool")}`,
    `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`,
    `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
    `SlurmctldLogFile=${join(dir, "log", "slurmctld.log")}`,
    `SlurmdLogFile=${join(dir, "log", "slurmd.log")}`,
    // no cgroups in a container: track processes through /proc, bind no tasks
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "AccountingStorageType=accounting_storage/none",
    "JobAcctGatherType=jobacct_gather/none",
    "JobCompType=jobcomp/none",
    "MpiDefault=none",
    "ReturnToService=2",
    "MinJobAge=600",
    `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus().length} RealMemory=1000 State=UNKNOWN`,
    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n");
  const confFile = join(dir, "slurm.conf");
  writeFileSync(confFile, conf);
  const cluster: Cluster = { dir, env: { ...(process.env as Record<string, string>), PATH: SBIN_PATH, SLURM_CONF: confFile }, procs: [] };
  try {
    await startDaemons(cluster, sock, key, confFile);
    return cluster;
  } catch (e) {
    const why = `${(e as Error).message}\n${logs(dir)}`;
    await stopSlurm(cluster);
    throw new Error(why);
  }
}

async function startDaemons(cluster: Cluster, sock: string, key: string, confFile: string): Promise<void> {
  const dir = cluster.dir;
  const spawn = (argv: string[]) => {
    const name = argv[0].replace(/.*\//, "");
    cluster.procs.push({ name, proc: Bun.spawn(argv, { env: cluster.env, stdout: "ignore", stderr: Bun.file(join(dir, "log", `${name}.stderr`)) }) });
  };
  spawn([tool("munged")!, "-F", "--force", `--socket=${sock}`, `--key-file=${key}`, `--pid-file=${join(dir, "munge", "munged.pid")}`, `--log-file=${join(dir, "log", "munged.log")}`, `--seed-file=${join(dir, "munge", "munged.seed")}`]);
  for (let i = 0; i < 100 && !existsSync(sock); i++) await Bun.sleep(100);
  if (!existsSync(sock)) throw new Error("munged did not start");
  spawn([tool("slurmctld")!, "-D", "-i", "-f", confFile]);
  spawn([tool("slurmd")!, "-D", "-N", "localhost", "-f", confFile]);
  for (let i = 0; i < 120; i++) {
    const dead = cluster.procs.find((p) => p.proc.exitCode !== null);
    if (dead) throw new Error(`${dead.name} exited with code ${dead.proc.exitCode}`);
    const s = run(cluster, ["sinfo", "-h", "-o", "%T"]);
    if (s.code === 0 && s.out.trim() === "idle") return;
    await Bun.sleep(500);
  }
  throw new Error(`Slurm did not come up in 60 s (sinfo: ${run(cluster, ["sinfo", "-h", "-o", "%T"]).out.trim() || "no answer"})`);
}

async function stopSlurm(c: Cluster): Promise<void> {
  run(c, ["scancel", "--partition=debug"]);
  run(c, ["scontrol", "shutdown"]);
  // the daemons in reverse order (slurmd, slurmctld, munged); each by its own pid
  for (const { proc: p } of [...c.procs].reverse()) {
    if (p.exitCode === null) p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await p.exited;
    clearTimeout(t);
  }
  rmSync(c.dir, { recursive: true, force: true });
}

describe("a real single-node Slurm", () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "abft-slurm-sweep-"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test("the sbatch array runs both cells and the merge job writes results.csv and summary.md", async () => {
    const t0 = performance.now();
    const cluster = await startSlurm();
    try {
      const spec = join(work, "tiny.json");
      const out = join(work, "sweep");
      writeFileSync(
        spec,
        JSON.stringify({
          name: "tiny",
          base: { model: join(SHARED, "models", "babygpt2"), data: join(SHARED, "data"), "train-size": 4, batch: 2, "micro-batch": 2, steps: 1, "test-queries": 1, "stats-prompts": 1, "eval-before": false },
          grid: { seed: [0, 1] },
          out,
        }),
      );
      const sub = Bun.spawnSync([process.execPath, MAIN, "sweep", spec, "--slurm", "--partition", "debug", "--time", "00:20:00", "--submit"], { cwd: work, env: cluster.env, stdout: "pipe", stderr: "pipe" });
      const said = sub.stdout.toString() + sub.stderr.toString();
      expect(said).toMatch(/submitted array job \d+ and merge job \d+/);
      expect(sub.exitCode).toBe(0);
      const [, arrayJob, mergeJob] = /submitted array job (\d+) and merge job (\d+)/.exec(said)!;
      expect(readFileSync(join(out, "sweep.sbatch"), "utf8")).toContain("#SBATCH --array=0-1\n");

      // wait for the queue to empty (the merge job runs last)
      let queue = "";
      for (let i = 0; i < 900; i++) {
        queue = run(cluster, ["squeue", "-h", "-o", "%i %T %r"]).out.trim();
        if (queue === "") break;
        await Bun.sleep(1000);
      }
      const slurmOut = existsSync(join(out, "slurm")) ? readdirSync(join(out, "slurm")).map((f) => `--- ${f}\n${readFileSync(join(out, "slurm", f), "utf8").trim().split("\n").slice(-5).join("\n")}`).join("\n") : "";
      expect(queue, `jobs still queued after 15 minutes:\n${queue}\n${slurmOut}`).toBe("");

      const state = (id: string) => run(cluster, ["scontrol", "show", "job", id]).out;
      const arrayState = state(arrayJob);
      expect(arrayState.match(/JobState=COMPLETED/g)?.length, `${arrayState}\n${slurmOut}`).toBe(2);
      expect(arrayState.match(/ExitCode=0:0/g)?.length).toBe(2);
      const mergeState = state(mergeJob);
      expect(mergeState).toContain("JobState=COMPLETED");
      // afterany: the merge job started only after both array tasks had ended
      const times = (text: string, key: string) => [...text.matchAll(new RegExp(`${key}=(\\S+)`, "g"))].map((m) => Date.parse(m[1]));
      const ends = times(arrayState, "EndTime");
      expect(ends.length).toBe(2);
      expect(ends.every(Number.isFinite)).toBe(true);
      expect(times(mergeState, "StartTime")[0]).toBeGreaterThanOrEqual(Math.max(...ends));
      const logsDir = readdirSync(join(out, "slurm")).sort();
      expect(logsDir).toEqual([`${arrayJob}_0.err`, `${arrayJob}_0.out`, `${arrayJob}_1.err`, `${arrayJob}_1.out`, `merge_${mergeJob}.out`]);

      const rows = parseCsv(readFileSync(join(out, "results.csv"), "utf8"));
      expect(rows[0]).toEqual(["index", "cell", "seed", "accuracy_before", "accuracy_after", "train_seconds", "run_dir"]);
      expect(rows.slice(1).map((r) => r[2])).toEqual(["0", "1"]);
      for (const r of rows.slice(1)) {
        expect(r[3]).toBe("");
        expect(Number(r[4])).toBeGreaterThanOrEqual(0);
        expect(Number(r[4])).toBeLessThanOrEqual(1);
        expect(Number(r[5])).toBeGreaterThan(0);
        expect(existsSync(join(r[6], "summary.json"))).toBe(true);
      }
      const md = readFileSync(join(out, "summary.md"), "utf8");
      expect(md).toMatch(/\| babygpt2 \| ABFT \| \d+\.\d\d( ± \d+\.\d\d)? \| \d+\.\d\d \| \d+\.\d \|/);
      expect(md).toContain("Cells: 2 of 2 finished, 0 failed");
      console.log(`slurm end to end: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      await stopSlurm(cluster);
    }
  }, 1_200_000);
});
