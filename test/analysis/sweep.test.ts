// `abft sweep`: spec validation, grid expansion, cell ids, shards, results.csv, the markdown summary,
// and running cells as subprocesses (resume, skip, failures, an interrupted sweep restarted).
// Cells run a fake `abft` (a small script written here that obeys `run ... --out/--resume DIR`),
// so these tests need no GPU; the Slurm test (slurm.test.ts) runs real tiny cells.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeSweep, runSweep, selfCommand } from "../../src/analysis/sweep.ts";
import { cellArgs, cellDir, expandCells, parseShard, shardCells } from "../../src/analysis/sweep_cells.ts";
import { csvColumns, csvLine, parseCsv, ResultsCsv, type CellFailure, type CellResult } from "../../src/analysis/sweep_results.ts";
import { loadSpec, parseSpec, type SweepSpec } from "../../src/analysis/sweep_spec.ts";
import { mean, sampleStd, summaryMarkdown } from "../../src/analysis/sweep_summary.ts";
import { abftRunOptions } from "../../src/cli/sweep.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const table = abftRunOptions();
const spec = (json: unknown) => parseSpec(json, table, "t.json");
const errorOf = (json: unknown): string => {
  try {
    spec(json);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("the spec was accepted");
};

// A fake `abft run`: records each invocation in DIR/invocations.jsonl; --A 99 fails (exit 3, an
// error line then a hint); --A 77 writes config.json and is killed (SIGKILL) unless resumed;
// --A 55 writes config.json and its pid, then hangs unless resumed; anything else writes
// config.json and summary.json with accuracy_after = 0.6 + seed / 10.
const FAKE = `
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
const args = process.argv.slice(2);
const get = (k) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const resume = args.includes("--resume");
const dir = get("--out") ?? get("--resume");
if (args[0] !== "run" || !dir) { console.error("abft: error: fake abft: bad arguments " + args.join(" ")); process.exit(2); }
mkdirSync(dir, { recursive: true });
appendFileSync(join(dir, "invocations.jsonl"), JSON.stringify(args) + "\\n");
const seed = Number(get("--seed") ?? 0), A = Number(get("--A") ?? 0.5);
console.log("fake abft: training");
if (A === 99) { console.error("abft: error: boom at A=99"); console.error("abft: hint: do not use A=99"); process.exit(3); }
if (!existsSync(join(dir, "config.json"))) writeFileSync(join(dir, "config.json"), JSON.stringify({ args }));
if (A === 77 && !resume) process.kill(process.pid, "SIGKILL");
if (A === 55 && !resume) { writeFileSync(join(dir, "pid"), String(process.pid)); await Bun.sleep(600000); }
writeFileSync(join(dir, "summary.json"), JSON.stringify({ accuracy_before: 0.5, accuracy_after: 0.6 + seed / 10, train_seconds: 1 + seed }));
`;

let tmp: string;
let fake: string[];
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "abft-sweep-"));
  writeFileSync(join(tmp, "fake_abft.ts"), FAKE);
  fake = [process.execPath, join(tmp, "fake_abft.ts")];
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const invocations = (dir: string): string[][] =>
  existsSync(join(dir, "invocations.jsonl")) ? readFileSync(join(dir, "invocations.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)) : [];

describe("spec validation: one line naming the bad key or value", () => {
  const cases: [unknown, string[]][] = [
    [{ grid: { seed: [0] }, grids: {} }, ["unknown key 'grids'"]],
    [{ grid: { trainSize: [4] } }, ["grid", "unknown run option 'trainSize'", "did you mean 'train-size'"]],
    [{ base: { "no-pid": true }, grid: { seed: [0] } }, ["base", "'no-pid'", `"pid": false`]],
    [{ base: { stpes: 3 }, grid: { seed: [0] } }, ["did you mean 'steps'"]],
    [{ grid: { seed: [0, 1.5] } }, ["grid.seed[1]", "--seed must be an integer >= 0, got '1.5'"]],
    [{ grid: { A: ["x"] } }, ["grid.A[0]", "--A must be a number"]],
    [{ grid: { objective: ["abft", "sft"] } }, ["grid.objective[1]", "'sft' must be one of abft, e2e"]],
    [{ grid: { pid: ["yes"] } }, ["grid.pid[0]", "'yes' must be true or false"]],
    [{ grid: { seed: [] } }, ["grid.seed", "empty"]],
    [{ grid: { seed: 3 } }, ["grid.seed", "must be a list"]],
    [{ grid: { seed: [0, 1, 0] } }, ["grid.seed", "0 appears twice"]],
    [{ base: { out: "x" }, grid: { seed: [0] } }, ["'out'", "chosen by the sweep"]],
    [{ base: { model: null }, grid: { seed: [0] } }, ["base.model", "must be a number or a string"]],
    [{ grid: [{ seed: [0] }, { task: "sst2" }] }, ["grid[1].task", "must be a list"]],
    [{ grid: { A: [0.5] }, variants: [{ label: "x", A: 0 }] }, ["variants[0]", "sets 'A', which the grid varies"]],
    [{ grid: { seed: [0] }, variants: [{ label: "x" }, { label: "x", pid: false }] }, ["variants[1]", "label 'x' is used twice"]],
    [{ name: "a b", grid: { seed: [0] } }, ["name 'a b'"]],
    [{ base: { steps: 1 } }, ["no \"grid\""]],
    [[1, 2], ["must be a JSON object"]],
  ];
  for (const [json, parts] of cases) {
    test(parts.join(" / "), () => {
      const msg = errorOf(json);
      expect(msg).not.toContain("\n");
      expect(msg.startsWith("t.json")).toBe(true);
      for (const p of parts) expect(msg).toContain(p);
    });
  }

  test("every key of `abft run` is accepted, with its parser's canonical values", () => {
    const s = spec({ base: { "train-size": "16", lr: 1e-3, "train-bias": true, "head-filter": false, "eval-before": false, k: 2 }, grid: { seed: ["1", 2] } });
    expect(s.base["train-size"]).toBe(16);
    expect(s.grids[0].seed).toEqual([1, 2]);
    expect(s.out).toBe(join("sweeps", "t"));
    expect(s.name).toBe("t");
  });

  test("the paper's specs in scripts/sweeps are valid: Table 1, Table 4, Fig. 6", () => {
    const t1 = expandCells(loadSpec(join(ROOT, "scripts/sweeps/table1.json"), table), table);
    expect(t1.length).toBe(4 * 8 * 4 + 5 * 8 * 2);
    const t4s = loadSpec(join(ROOT, "scripts/sweeps/table4.json"), table);
    const t4 = expandCells(t4s, table);
    expect(t4.length).toBe(5 * (2 * 8 * 4 + 8 * 2));
    expect(t4s.variants!.map((v) => v.label)).toContain("w/o PID, w/o Head Filter");
    const f6 = expandCells(loadSpec(join(ROOT, "scripts/sweeps/fig6.json"), table), table);
    expect(f6.length).toBe(2 * 4 * 4 * 4);
    expect(new Set(f6.map((c) => `${c.values.pid}/${c.values.A}/${c.values.B}`)).size).toBe(32);
  });
});

describe("grid expansion and cell ids", () => {
  test("cartesian product, first key slowest; base < grid < variant; variants outermost; grid lists concatenated", () => {
    const s = spec({
      base: { model: "m", A: 0.5, steps: 3 },
      grid: [{ task: ["sst2", "mr"], seed: [0, 1, 2] }, { task: ["trec"], seed: [7], steps: [9] }],
      variants: [{ label: "ABFT" }, { label: "no pid", pid: false, A: 0 }],
    });
    const cells = expandCells(s, table);
    expect(cells.length).toBe(2 * (6 + 1));
    expect(cells.map((c) => c.index)).toEqual([...Array(14).keys()]);
    expect(cells.slice(0, 7).map((c) => `${c.values.task}/${c.values.seed}`)).toEqual(["sst2/0", "sst2/1", "sst2/2", "mr/0", "mr/1", "mr/2", "trec/7"]);
    expect(cells[6].options.steps).toBe(9);
    expect(cells[0].options.steps).toBe(3);
    expect(cells[0].variant).toBe("ABFT");
    expect(cells[7].variant).toBe("no pid");
    expect(cells[7].options).toEqual({ model: "m", A: 0, steps: 3, task: "sst2", seed: 0, pid: false });
    // varied keys get their effective value: the run's default where nothing sets them
    expect(cells[0].values).toEqual({ variant: "ABFT", task: "sst2", seed: 0, steps: 3, pid: true, A: 0.5 });
    expect(cells[7].values.pid).toBe(false);
  });

  test("ids are readable, unique, independent of order and neighbours, and ignore options equal to the defaults", () => {
    const a = expandCells(spec({ base: { model: "org/gpt2-large" }, grid: { task: ["sst2", "mr"], seed: [0, 1], pid: [true, false] } }), table);
    expect(new Set(a.map((c) => c.id)).size).toBe(a.length);
    expect(a[1].id).toMatch(/^sst2_no-pid_seed-0_[0-9a-f]{8}$/);
    expect(a[0].id).toMatch(/^sst2_pid_seed-0_[0-9a-f]{8}$/);
    // other order, other neighbours, the default A spelled out: the same runs have the same ids
    const b = expandCells(spec({ base: { model: "org/gpt2-large", A: 0.5 }, grid: { pid: [false], seed: [1, 0], task: ["mr"] } }), table);
    const idOf = (cs: typeof a, task: string, seed: number, pid: boolean) => cs.find((c) => c.values.task === task && c.values.seed === seed && c.values.pid === pid)!.id;
    expect(idOf(b, "mr", 0, false)).toBe(idOf(a, "mr", 0, false));
    // another base setting is another run
    const c = expandCells(spec({ base: { model: "org/gpt2-large", steps: 5 }, grid: { task: ["mr"], seed: [0], pid: [false] } }), table);
    expect(c[0].id.split("_").at(-1)).not.toBe(idOf(a, "mr", 0, false).split("_").at(-1));
    // models are named by their last path part; variants by their label
    const d = expandCells(spec({ grid: { model: ["org/gpt2-large", "/x/y/babygpt2/"] }, variants: [{ label: "w/o PID, A=0", pid: false, A: 0 }] }), table);
    expect(d[0].id).toMatch(/^w-o-PID-A-0_gpt2-large_[0-9a-f]{8}$/);
    expect(d[1].id).toMatch(/^w-o-PID-A-0_babygpt2_[0-9a-f]{8}$/);
  });

  test("two cells that are the same run are an error", () => {
    expect(() => expandCells(spec({ grid: [{ seed: [0, 1] }, { seed: [1] }] }), table)).toThrow(/cells 1 and 2 are the same run/);
  });

  test("shards: every cell in exactly one shard, for any n; 0-based i/n", () => {
    const cells = expandCells(spec({ grid: { seed: [...Array(13).keys()] } }), table);
    for (let n = 1; n <= 15; n++) {
      const seen = new Map<number, number>();
      for (let i = 0; i < n; i++) for (const c of shardCells(cells, i, n)) seen.set(c.index, (seen.get(c.index) ?? 0) + 1);
      expect([...seen.keys()].sort((x, y) => x - y)).toEqual(cells.map((c) => c.index));
      expect([...seen.values()].every((k) => k === 1)).toBe(true);
    }
    expect(shardCells(cells, 1, 4).map((c) => c.index)).toEqual([1, 5, 9]);
    expect(parseShard("3/4")).toEqual({ i: 3, n: 4 });
    expect(() => parseShard("4/4")).toThrow("0..3 (shards are 0-based)");
    expect(() => parseShard("0/0")).toThrow("at least 1");
    expect(() => parseShard("a/2")).toThrow("expected i/n");
  });

  test("cell arguments: values, --no-x for false negatable options, --x for true flags, --out or --resume", () => {
    const [c] = expandCells(spec({ base: { model: "m", pid: false, "head-filter": true, "train-bias": true, "eval-before": false, lr: 0.001 }, grid: { seed: [3] } }), table);
    const args = cellArgs(c, table, "d", false);
    expect(args).toEqual(["run", "--model", "m", "--no-pid", "--train-bias", "--no-eval-before", "--lr", "0.001", "--seed", "3", "--out", "d"]);
    expect(cellArgs(c, table, "d", true).slice(-2)).toEqual(["--resume", "d"]);
  });
});

describe("results.csv and summary.md", () => {
  test("csv lines quote what needs quoting and parse back", () => {
    const row = ["a", 'say "hi"', "x,y", "two\nlines", 1.5, true, null];
    const back = parseCsv(csvLine(row) + csvLine([1, 2]));
    expect(back).toEqual([["a", 'say "hi"', "x,y", "two\nlines", "1.5", "true", ""], ["1", "2"]]);
  });

  test("the header is written once; rows are appended; a reopened file knows its cells; another header is an error", () => {
    const p = join(tmp, "csv", "results.csv");
    const a = ResultsCsv.open(p, ["index", "cell", "x"]);
    a.append("c0", [0, "c0", "a,b"]);
    const b = ResultsCsv.open(p, ["index", "cell", "x"]);
    expect(b.has("c0")).toBe(true);
    expect(b.has("c1")).toBe(false);
    b.append("c1", [1, "c1", 2]);
    expect(readFileSync(p, "utf8")).toBe('index,cell,x\n0,c0,"a,b"\n1,c1,2\n');
    expect(() => ResultsCsv.open(p, ["index", "cell", "y"])).toThrow("has the columns index,cell,x");
    // a row cut short by a crash does not count, and the next row starts on its own line
    writeFileSync(p, readFileSync(p, "utf8") + "2,c2");
    const c = ResultsCsv.open(p, ["index", "cell", "x"]);
    expect(c.has("c2")).toBe(false);
    c.append("c2", [2, "c2", 3]);
    expect(parseCsv(readFileSync(p, "utf8")).at(-1)).toEqual(["2", "c2", "3"]);
  });

  test("summary numbers: mean ± sample std over seeds, Vanilla once per model, incomplete entries marked, the mean over tasks", () => {
    const s: SweepSpec = spec({
      name: "t",
      grid: { model: ["org/m1", "org/m2"], objective: ["abft", "e2e"], task: ["sst2", "mr"], seed: [0, 1, 2] },
    });
    const cells = expandCells(s, table);
    const results = new Map<number, CellResult>();
    const failures = new Map<number, CellFailure>();
    const after: Record<string, number[]> = {
      "org/m1/abft/sst2": [0.5, 0.6, 0.7],
      "org/m1/abft/mr": [0.8, 0.8, 0.9],
      "org/m1/e2e/sst2": [0.4, 0.4, 0.4],
      "org/m1/e2e/mr": [0.9, 1.0],
      "org/m2/abft/sst2": [0.55],
      "org/m2/abft/mr": [],
      "org/m2/e2e/sst2": [0.1, 0.2, 0.3],
      "org/m2/e2e/mr": [0.3, 0.3, 0.3],
    };
    const before: Record<string, number[]> = { "org/m1/sst2": [0.2, 0.4, 0.6], "org/m1/mr": [0.5, 0.5, 0.5], "org/m2/sst2": [0.25, 0.25, 0.25], "org/m2/mr": [0.1, 0.1, 0.1] };
    for (const c of cells) {
      const v = c.values;
      const xs = after[`${v.model}/${v.objective}/${v.task}`];
      const seed = v.seed as number;
      if (seed < xs.length) results.set(c.index, { accuracy_before: before[`${v.model}/${v.task}`][seed], accuracy_after: xs[seed], train_seconds: 10 + seed, run_dir: "d" });
      else if (v.model === "org/m2" && v.task === "mr" && seed === 0) failures.set(c.index, { exit_code: 137, signal: "SIGKILL", last_stderr: "train: 3/32 | x", error: null, seconds: 5, at: "" });
    }
    const md = summaryMarkdown({ spec: s, cells, table, results, failures });
    const rows = md.split("\n").filter((l) => l.startsWith("| m"));
    const cellsOf = (l: string) => l.split(/(?<!\\)\|/).slice(1, -1).map((x) => x.trim());
    expect(md).toContain("| Model | Method | SST2 | MR | Mean | Train s |");
    expect(rows.map((r) => cellsOf(r).slice(0, 2).join("/"))).toEqual(["m1/Vanilla", "m1/ABFT", "m1/E2E", "m2/Vanilla", "m2/ABFT", "m2/E2E"]);
    const f = (xs: number[]) => `${(100 * mean(xs)).toFixed(2)} ± ${(100 * sampleStd(xs)).toFixed(2)}`;
    expect(cellsOf(rows[0])).toEqual(["m1", "Vanilla", "40.00 ± 20.00", "50.00 ± 0.00", "45.00", "–"]);
    expect(cellsOf(rows[1])).toEqual(["m1", "ABFT", "60.00 ± 10.00", f([0.8, 0.8, 0.9]), (100 * (0.6 + (0.8 + 0.8 + 0.9) / 3) / 2).toFixed(2), "11.0"]);
    expect(cellsOf(rows[2])).toEqual(["m1", "E2E", "40.00 ± 0.00", "95.00 ± 7.07 (2/3)", "67.50", (mean([10, 11, 12, 10, 11])).toFixed(1)]);
    expect(cellsOf(rows[4])).toEqual(["m2", "ABFT", "55.00 (1/3)", "–", "55.00*", "10.0"]);
    expect(cellsOf(rows[3])[2]).toBe("25.00 ± 0.00");
    expect(md).toContain("mean over the tasks that have results so far");
    expect(md).toContain(`Cells: ${results.size} of 24 finished, 1 failed, ${24 - results.size - 1} not finished`);
    expect(md).toMatch(/\| \d+ \| m2_mr_abft_seed-0_[0-9a-f]{8} \| 137 \(SIGKILL\) \| train: 3\/32 \\\| x \|/);
    expect(sampleStd([0.5, 0.6, 0.7])).toBeCloseTo(0.1, 12);
  });

  test("variants name the methods (Table 4 shape)", () => {
    const s = spec({ base: { model: "org/m" }, grid: { task: ["sst2"], seed: [0, 1] }, variants: [{ label: "ABFT" }, { label: "w/o PID", pid: false }] });
    const cells = expandCells(s, table);
    const results = new Map(cells.map((c) => [c.index, { accuracy_before: null, accuracy_after: c.variant === "ABFT" ? 0.8 : 0.7, train_seconds: 1, run_dir: "d" }]));
    const md = summaryMarkdown({ spec: s, cells, table, results, failures: new Map() });
    expect(md).toContain("| m | ABFT | 80.00 ± 0.00 | 80.00 | 1.0 |");
    expect(md).toContain("| m | w/o PID | 70.00 ± 0.00 | 70.00 | 1.0 |");
    expect(md).not.toContain("Vanilla |");
  });
});

describe("running cells as subprocesses", () => {
  const specFile = (name: string, json: object) => {
    const p = join(tmp, `${name}.json`);
    writeFileSync(p, JSON.stringify({ name, out: join(tmp, name), ...json }));
    return loadSpec(p, table);
  };

  test("failed cells are recorded and the sweep goes on; the next sweep skips finished cells, resumes interrupted ones and retries failed ones", async () => {
    const s = specFile("resume", { base: { model: "m" }, grid: { seed: [0, 1] }, variants: [{ label: "ok" }, { label: "crash", A: 99 }, { label: "killed", A: 77 }] });
    const cells = expandCells(s, table);
    const lines: string[] = [];
    const r1 = await runSweep(s, table, { self: fake, log: (l) => lines.push(l) });
    expect(r1.ran).toBe(6);
    expect(r1.finished).toBe(2);
    expect(r1.failed.map((f) => [f.cell.variant, f.failure.exit_code, f.failure.signal])).toEqual([
      ["crash", 3, null],
      ["crash", 3, null],
      ["killed", 137, "SIGKILL"],
      ["killed", 137, "SIGKILL"],
    ]);
    const crash = JSON.parse(readFileSync(join(cellDir(s, cells[2]), "failed.json"), "utf8"));
    expect(crash.last_stderr).toBe("abft: hint: do not use A=99");
    expect(crash.error).toBe("abft: error: boom at A=99");
    expect(readFileSync(join(cellDir(s, cells[2]), "sweep.log"), "utf8")).toContain("fake abft: training");
    expect(lines.some((l) => l.includes("FAILED (exit 3): abft: error: boom at A=99"))).toBe(true);
    const csv1 = readFileSync(join(s.out, "results.csv"), "utf8");
    expect(parseCsv(csv1).map((r) => r[1])).toEqual(["cell", cells[0].id, cells[1].id]);
    expect(parseCsv(csv1)[0]).toEqual(csvColumns(s));
    expect(parseCsv(csv1)[0]).toEqual(["index", "cell", "variant", "seed", "A", "accuracy_before", "accuracy_after", "train_seconds", "run_dir"]);
    expect(readFileSync(join(s.out, "summary.md"), "utf8")).toContain("## Failed cells");

    const r2 = await runSweep(s, table, { self: fake, log: () => {} });
    expect(r2.skipped).toBe(2);
    expect(r2.ran).toBe(4);
    expect(r2.finished).toBe(2);
    expect(invocations(cellDir(s, cells[0])).length).toBe(1);
    const killed = invocations(cellDir(s, cells[4]));
    expect(killed.length).toBe(2);
    expect(killed[1].slice(-2)).toEqual(["--resume", cellDir(s, cells[4])]);
    expect(invocations(cellDir(s, cells[2])).length).toBe(2);
    expect(existsSync(join(cellDir(s, cells[4]), "failed.json"))).toBe(false);
    // appended, never rewritten; one row per finished cell
    const csv2 = readFileSync(join(s.out, "results.csv"), "utf8");
    expect(csv2.startsWith(csv1)).toBe(true);
    expect(parseCsv(csv2).slice(1).map((r) => Number(r[0]))).toEqual([0, 1, 4, 5]);
    expect(parseCsv(csv2)[3].slice(2, 5)).toEqual(["killed", "0", "77"]);

    // --skip-failed leaves the failed cells alone
    const r3 = await runSweep(s, table, { self: fake, log: () => {}, skipFailed: true });
    expect(r3.ran).toBe(0);
    expect(r3.failed.length).toBe(2);
    expect(invocations(cellDir(s, cells[2])).length).toBe(2);
  }, 60_000);

  test("a sweep killed in the middle and started again finishes without re-running finished cells", async () => {
    const s = specFile("interrupt", { base: { model: "m" }, grid: { A: [0.5, 55, 1] } });
    const cells = expandCells(s, table);
    const driver = join(tmp, "driver.ts");
    writeFileSync(
      driver,
      `import { runSweep } from ${JSON.stringify(join(ROOT, "src/analysis/sweep.ts"))};
       import { loadSpec } from ${JSON.stringify(join(ROOT, "src/analysis/sweep_spec.ts"))};
       import { abftRunOptions } from ${JSON.stringify(join(ROOT, "src/cli/sweep.ts"))};
       const t = abftRunOptions();
       await runSweep(loadSpec(process.argv[2], t), t, { self: ${JSON.stringify(fake)} });`,
    );
    const proc = Bun.spawn([process.execPath, driver, join(tmp, "interrupt.json")], { stdout: "ignore", stderr: "ignore" });
    const pidFile = join(cellDir(s, cells[1]), "pid");
    for (let i = 0; i < 400 && !existsSync(pidFile); i++) await Bun.sleep(50);
    expect(existsSync(pidFile)).toBe(true);
    proc.kill("SIGKILL");
    await proc.exited;
    process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
    expect(existsSync(join(cellDir(s, cells[0]), "summary.json"))).toBe(true);
    expect(existsSync(join(cellDir(s, cells[2]), "config.json"))).toBe(false);

    const r = await runSweep(s, table, { self: fake, log: () => {} });
    expect(r.skipped).toBe(1);
    expect(r.ran).toBe(2);
    expect(r.failed.length).toBe(0);
    expect(invocations(cellDir(s, cells[0])).length).toBe(1);
    expect(invocations(cellDir(s, cells[1])).map((a) => a.includes("--resume"))).toEqual([false, true]);
    expect(parseCsv(readFileSync(join(s.out, "results.csv"), "utf8")).slice(1).map((x) => x[0])).toEqual(["0", "1", "2"]);
  }, 60_000);

  test("shards write their own CSV; --merge rebuilds results.csv in cell order and summary.md from every cell", async () => {
    const s = specFile("shards", { base: { model: "m" }, grid: { task: ["sst2", "mr"], seed: [0, 1, 2] } });
    const r1 = await runSweep(s, table, { self: fake, shard: parseShard("1/2"), log: () => {} });
    const r0 = await runSweep(s, table, { self: fake, shard: parseShard("0/2"), log: () => {} });
    expect([r0.ran, r1.ran]).toEqual([3, 3]);
    expect(r0.summary).toBe(null);
    expect(parseCsv(readFileSync(join(s.out, "results.shard-1-of-2.csv"), "utf8")).slice(1).map((x) => x[0])).toEqual(["1", "3", "5"]);
    expect(existsSync(join(s.out, "results.csv"))).toBe(false);
    const c = await runSweep(s, table, { self: fake, cell: 4, log: () => {} });
    expect([c.selected, c.skipped, c.csv]).toEqual([1, 1, null]);
    const m = mergeSweep(s, table);
    expect([m.finished, m.failed, m.total]).toEqual([6, 0, 6]);
    const rows = parseCsv(readFileSync(m.csv, "utf8"));
    expect(rows.slice(1).map((x) => x[0])).toEqual(["0", "1", "2", "3", "4", "5"]);
    expect(rows[1].at(-1)).toBe(join(s.out, "cells", rows[1][1]));
    expect(readFileSync(m.summary, "utf8")).toContain("| m | ABFT | 70.00 ± 10.00 | 70.00 ± 10.00 | 70.00 | 2.0 |");
    expect(readdirSync(join(s.out, "cells")).length).toBe(6);
  }, 60_000);

  test("the command that runs this abft: bun and the entry script from source, the executable alone when compiled", () => {
    const self = selfCommand();
    expect(self[0]).toBe(process.execPath);
    expect(self.length).toBe(2);
  });
});

describe("abft sweep (CLI)", () => {
  const cli = (args: string[]) => {
    const p = Bun.spawnSync([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe", cwd: tmp });
    return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };

  test("--dry-run lists the cells with their status and command; a bad spec is one line and exit 1", () => {
    const p = join(tmp, "cli.json");
    writeFileSync(p, JSON.stringify({ name: "cli", base: { model: "m" }, grid: { task: ["sst2", "mr"], seed: [0, 1] } }));
    const r = cli(["sweep", p, "--dry-run", "--shard", "1/2"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBe(3);
    expect(lines[1]).toMatch(/^1 +todo +sst2_seed-1_[0-9a-f]{8} +run --model m --task sst2 --seed 1 --out sweeps\/cli\/cells\/sst2_seed-1_/);
    expect(lines[2]).toMatch(/^3 +todo +mr_seed-1_/);

    writeFileSync(p, JSON.stringify({ grid: { seed: [0], tsak: ["x"] } }));
    const bad = cli(["sweep", p]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")[0]).toBe(`abft: error: ${p}: grid: unknown run option 'tsak' (did you mean 'task'?)`);
    expect(cli(["sweep", p, "--partition", "gpu"]).stderr).toContain("--partition only goes with --slurm");
  });
});
