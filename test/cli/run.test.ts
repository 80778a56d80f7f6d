// `abft run` end to end on babygpt2 (a real pretrained GPT-2, bf16) with tiny sizes: the run
// directory, an interrupted run resumed, `eval` and `inspect` on the run directory, `export` to a
// HF folder that loads back to the same model, and prompts exported and imported exactly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { SHARED } from "../helpers.ts";

const MAIN = `${import.meta.dir}/../../src/cli/main.ts`;
const MODEL = join(SHARED, "models", "babygpt2");
const DATA = join(SHARED, "data");
const SMALL = ["--task", "sst2", "--data", DATA, "--train-size", "8", "--batch", "4", "--micro-batch", "4", "--test-queries", "3", "--stats-prompts", "2", "--threshold", "0.05", "--lr", "1e-3", "--save-every", "1"];

async function abft(args: string[]) {
  const proc = Bun.spawn(["bun", MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  return { code: await proc.exited, stdout, stderr };
}

const lines = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));

describe("abft run", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "abft-run-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("an interrupted run keeps its finished steps and resumes to the end", async () => {
    const out = join(dir, "run");
    const proc = Bun.spawn(["bun", MAIN, "run", "--model", MODEL, ...SMALL, "--steps", "3", "--out", out], { stdout: "pipe", stderr: "pipe" });
    // interrupt (SIGKILL: nothing gets to clean up) once the first step's state is saved
    for (let i = 0; i < 1200 && !existsSync(join(out, "state.json")); i++) await Bun.sleep(250);
    proc.kill(9);
    await proc.exited;
    expect(existsSync(join(out, "config.json"))).toBe(true);
    expect(existsSync(join(out, "eval_before.json"))).toBe(true);
    const before = lines(join(out, "metrics.jsonl"));
    expect(before.length).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(out, "eval_after.json"))).toBe(false);

    const r = await abft(["run", "--resume", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("continuing after step");
    const recs = lines(join(out, "metrics.jsonl"));
    expect(recs.map((x) => x.step)).toEqual([1, 2, 3]);
    expect(recs[0]).toEqual(before[0]);
    for (const f of ["eval_after.json", "abft.safetensors", "shift.json", "attention_before.json", "attention_after.json", "summary.json"]) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.seed).toBe(0);
    expect(cfg.train.objective).toBe("abft");
    const ck = Checkpoint.open(join(out, "abft.safetensors"));
    expect(ck.names().sort()).toEqual(Array.from({ length: 6 }, (_, l) => [`layers.${l}.k`, `layers.${l}.q`]).flat().sort());
    expect(ck.metadata.base_model).toBe(MODEL);
    ck.close();
    const shift = JSON.parse(readFileSync(join(out, "shift.json"), "utf8"));
    expect(shift.layers.some((l: { q: number }) => l.q > 0)).toBe(true);
    expect(r.stdout).toContain("accuracy, ABFT");

    // the same run without interruption gives the same per-step metrics
    const straight = join(dir, "straight");
    const u = await abft(["run", "--model", MODEL, ...SMALL, "--steps", "3", "--out", straight, "--no-eval-before"]);
    expect(u.code).toBe(0);
    const strip = (x: Record<string, unknown>) => ({ ...x, seconds: 0, samplesPerSec: 0 });
    expect(lines(join(straight, "metrics.jsonl")).map(strip)).toEqual(recs.map(strip));
  }, 900_000);

  test("eval, inspect and export accept the run directory; the export loads back to the same model", async () => {
    const out = join(dir, "run");
    const ev = await abft(["eval", "--model", out, "--task", "sst2", "--data", DATA, "--test-queries", "3", "--json", "--out", join(dir, "ev.json")]);
    expect(ev.code).toBe(0);
    const after = JSON.parse(readFileSync(join(out, "eval_after.json"), "utf8"));
    expect(JSON.parse(ev.stdout).accuracy).toBe(after.accuracy);

    const exported = join(dir, "hf");
    const ex = await abft(["export", "--run", out, "--out", exported]);
    expect(ex.code).toBe(0);
    const text = "sentence: a gorgeous film sentiment: positive\nsentence: dull sentiment:";
    const a = JSON.parse((await abft(["inspect", "--model", out, "--text", text, "--json"])).stdout);
    const b = JSON.parse((await abft(["inspect", "--model", exported, "--text", text, "--json"])).stdout);
    const base = JSON.parse((await abft(["inspect", "--model", MODEL, "--text", text, "--json"])).stdout);
    expect(b.logits_last).toEqual(a.logits_last);
    expect(b.attention_last_row).toEqual(a.attention_last_row);
    expect(b.logits_last).not.toEqual(base.logits_last); // training changed something
  }, 600_000);

  test("prompts exported and imported give the same evaluation", async () => {
    const file = join(dir, "test.jsonl");
    const p = await abft(["prompts", "--model", MODEL, "--task", "sst2", "--data", DATA, "--test-queries", "3", "--out", file]);
    expect(p.code).toBe(0);
    expect(readFileSync(file, "utf8").trim().split("\n").length).toBe(6);
    const direct = await abft(["eval", "--model", MODEL, "--task", "sst2", "--data", DATA, "--test-queries", "3", "--json", "--out", join(dir, "e1.json")]);
    const imported = await abft(["eval", "--model", MODEL, "--task", "sst2", "--test-prompts", file, "--json", "--out", join(dir, "e2.json")]);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout).accuracy).toBe(JSON.parse(direct.stdout).accuracy);
    expect(JSON.parse(imported.stdout).confusion).toEqual(JSON.parse(direct.stdout).confusion);
  }, 600_000);

  test("bad options are one-line errors", async () => {
    const r = await abft(["run", "--model", MODEL, "--task", "nope", "--steps", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown task "nope"');
    const s = await abft(["run", "--steps", "zero"]);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toContain("--steps must be an integer >= 1, got 'zero'");
  });
});
