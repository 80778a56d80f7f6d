// The benchmark runner works on lavapipe: it checks a case against its reference, times it, prints
// the table with the adapter and writes the JSON (one small case, to stay quick).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

test("bun run bench kernels prints a table with the adapter and writes JSON", async () => {
  const proc = Bun.spawn(["bun", "run", "bench", "kernels", "--filter", "residual_forward 163"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out).toMatch(/adapter: .*vulkan/);
  expect(out).toMatch(/kernel\s+size\s+ms\/run\s+TFLOP\/s\s+GB\/s/);
  expect(out).toMatch(/residual_forward\s+163 tokens x 4096\s+[\d.]+/);
  const file = /wrote (bench-results\/\S+\.json)/.exec(out)![1];
  const json = JSON.parse(readFileSync(join(ROOT, file), "utf8"));
  expect(json.results[0].kernel).toBe("residual_forward");
  expect(json.results[0].ms).toBeGreaterThan(0);
  expect(json.adapter.backend).toBe("vulkan");
});

test("an unknown suite is a one-line error", async () => {
  const proc = Bun.spawn(["bun", "run", "bench", "nope"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const err = await new Response(proc.stderr).text();
  expect(await proc.exited).toBe(2);
  expect(err).toContain("bench: unknown suite 'nope' (suites: kernels, models, eval, abft, soak, quant)");
});
