// `abft interpolate` at the corners of its grid reproduces the base model (0,0), the E2E run (1,0)
// and the ABFT run (0,1): the same accuracies as `abft eval` of each. The two "runs" here are run
// directories written directly, with W_Q/W_K moved far enough from babygpt2's to change predictions.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors_writer.ts";
import { buildModel } from "../../models/registry.ts";
import { loadConfig } from "../../src/io/config.ts";
import { gpuRuntime, SHARED, testRng } from "../helpers.ts";

const MAIN = `${import.meta.dir}/../../src/cli/main.ts`;
const MODEL = join(SHARED, "models", "babygpt2");
const DATA = join(SHARED, "data");
let dir: string;

async function abft(args: string[]) {
  const proc = Bun.spawn(["bun", MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  return { code: await proc.exited, stdout, stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "abft-interp-"));
  const rt = await gpuRuntime();
  const ck = Checkpoint.open(MODEL);
  const model = buildModel(rt, loadConfig(MODEL), ck);
  ck.close();
  const base = await Promise.all(model.qkParams().map(async (p) => ({ name: `layers.${p.layer}.${p.kind}`, shape: [...p.tensor.shape], data: await p.tensor.toF32() })));
  model.dispose();
  for (const name of ["abft", "e2e"]) {
    const rng = testRng(`interp-${name}`);
    const tensors: Record<string, TensorToWrite> = {};
    for (const t of base) tensors[t.name] = { dtype: "F32", shape: t.shape, data: t.data.map((x) => x + 0.3 * rng.normal()) };
    const run = join(dir, name);
    require("node:fs").mkdirSync(run);
    writeSafetensors(join(run, "abft.safetensors"), tensors, { base_model: MODEL, quant: "none" });
    writeFileSync(join(run, "config.json"), JSON.stringify({ model: MODEL, model_source: { dir: MODEL }, task: "trec" }));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the grid's corners are the base, E2E and ABFT models", async () => {
  const common = ["--task", "trec", "--data", DATA, "--test-queries", "4", "--seed", "2"];
  const accuracyOf = async (model: string) => {
    const r = await abft(["eval", "--model", model, ...common, "--json", "--out", join(dir, `${model.replace(/\W/g, "_")}.json`)]);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout).accuracy as number;
  };
  const want = { base: await accuracyOf(MODEL), e2e: await accuracyOf(join(dir, "e2e")), abft: await accuracyOf(join(dir, "abft")) };
  const out = join(dir, "grid");
  const r = await abft(["interpolate", "--abft", join(dir, "abft"), "--e2e", join(dir, "e2e"), "--base", MODEL, ...common, "--grid", "0:1:1", "--out", out]);
  expect(r.code).toBe(0);
  const points: { aE: number; aA: number; accuracy: number }[] = JSON.parse(readFileSync(join(out, "interpolation.json"), "utf8")).points;
  expect(points.length).toBe(4);
  const at = (aE: number, aA: number) => points.find((p) => p.aE === aE && p.aA === aA)!.accuracy;
  expect(at(0, 0)).toBe(want.base);
  expect(at(1, 0)).toBe(want.e2e);
  expect(at(0, 1)).toBe(want.abft);
  expect(readFileSync(join(out, "interpolation.csv"), "utf8").split("\n")[0]).toBe("a_E,a_A,accuracy");
  expect(readFileSync(join(out, "interpolation.png")).subarray(1, 4).toString()).toBe("PNG");
}, 900_000);
