// `abft inspect`, `abft tokenize` and `abft pull` as a user runs them, against the fixtures' HF
// references and a local stand-in for the hub (test/io/hub_server.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { SHARED } from "../helpers.ts";
import { startHubServer, type HubServer } from "../io/hub_server.ts";

const MAIN = `${import.meta.dir}/../../src/cli/main.ts`;

async function abft(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", MAIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  return { code: await proc.exited, stdout, stderr };
}

describe("abft inspect", () => {
  test.each(["gpt2", "llama-bf16", "qwen2"])("--json on the %s fixture equals HF transformers", async (name) => {
    const dir = join(SHARED, "fixtures", name);
    const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")).cases[0];
    const ids: number[] = ref.input_ids;
    const r = await abft(["inspect", "--model", dir, "--ids", ids.join(","), "--json", "--hidden"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.input_ids).toEqual(ids);
    const ck = Checkpoint.open(join(dir, "reference.safetensors"));
    const n = ids.length;
    const logits = ck.getF32("c0.logits");
    const V = logits.length / n;
    const last = logits.subarray((n - 1) * V);
    const scale = Math.max(...Array.from(last, Math.abs));
    for (let v = 0; v < V; v++) expect(Math.abs(out.logits_last[v] - last[v])).toBeLessThan(1e-4 * scale);
    const att = ck.getF32("c0.attentions"); // [L, NH, n, n]
    const [L, NH] = ck.info("c0.attentions").shape;
    expect(out.attention_last_row.length).toBe(L);
    for (let l = 0; l < L; l++)
      for (let h = 0; h < NH; h++)
        for (let t = 0; t < n; t++) expect(Math.abs(out.attention_last_row[l][h][t] - att[((l * NH + h) * n + n - 1) * n + t])).toBeLessThan(1e-5);
    expect(out.hidden_states.length).toBe(L + 1);
    ck.close();
  });

  test("a token id outside the vocabulary is a one-line error", async () => {
    const r = await abft(["inspect", "--model", join(SHARED, "fixtures", "gpt2"), "--ids", "1,2,99999"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("token id 99999 is outside the vocabulary (512 tokens)");
  });

  test("a folder that is not a model is a one-line error", async () => {
    const r = await abft(["inspect", "--model", SHARED, "--ids", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("has no config.json");
  });
});

describe("abft tokenize", () => {
  const refs = JSON.parse(readFileSync(join(SHARED, "fixtures/tokenizers/reference_encodings.json"), "utf8"));
  test.each(["gpt2", "llama3", "qwen"])("%s: ids and offsets equal HF tokenizers", async (name) => {
    const p = refs[name].prompts[1];
    const r = await abft(["tokenize", "--tokenizer", join(SHARED, "fixtures/tokenizers", name, "tokenizer.json"), "--text", p.text, "--no-special", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ids).toEqual(p.ids);
    expect(out.offsets).toEqual(p.offsets);
  });
});

describe("abft pull", () => {
  let hub: HubServer;
  let home: string;
  beforeAll(() => {
    hub = startHubServer({ repos: { "test-org/tiny-llama": { dir: join(SHARED, "fixtures", "llama") } } });
    home = mkdtempSync(join(tmpdir(), "abft-hf-"));
  });
  afterAll(() => {
    hub.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test("downloads into the HF cache, and inspect then runs offline from it", async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HOME: home };
    const r = await abft(["pull", "test-org/tiny-llama"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(join(home, "hub", "models--test-org--tiny-llama", "snapshots"));
    const ids = JSON.parse(readFileSync(join(SHARED, "fixtures/llama/reference.json"), "utf8")).cases[0].input_ids;
    const off = await abft(["inspect", "--model", "test-org/tiny-llama", "--ids", ids.join(","), "--json"], { ...env, HF_HUB_OFFLINE: "1" });
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout).attention_last_row.length).toBe(3);
  });
});
