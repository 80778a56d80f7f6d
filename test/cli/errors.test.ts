// Bad input through the CLI: one clear line that names the input and what is wrong, exit 1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../../src/io/safetensors_writer.ts";
import { SHARED } from "../helpers.ts";

const MAIN = `${import.meta.dir}/../../src/cli/main.ts`;
const GPT2 = join(SHARED, "fixtures", "gpt2");

async function abft(args: string[]) {
  const proc = Bun.spawn(["bun", MAIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  const [stdout, stderr] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  return { code: await proc.exited, stdout, stderr, error: stderr.split("\n").find((l) => l.startsWith("abft: error:")) ?? "" };
}

describe("bad input is a one-line error", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "abft-bad-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const inspect = (model: string) => abft(["inspect", "--model", model, "--ids", "1,2,3"]);

  test("a missing folder", async () => {
    const r = await inspect("./no/such/model");
    expect(r.code).toBe(1);
    expect(r.error).toContain("--model ./no/such/model: no such folder");
  });

  test("a folder without config.json", async () => {
    const r = await inspect(dir);
    expect(r.code).toBe(1);
    expect(r.error).toContain("has no config.json");
  });

  test("a truncated safetensors file", async () => {
    const m = join(dir, "truncated");
    cpSync(GPT2, m, { recursive: true });
    truncateSync(join(m, "model.safetensors"), 400_000);
    const r = await inspect(m);
    expect(r.code).toBe(1);
    expect(r.error).toContain("model.safetensors");
  });

  test("a tensor with the wrong shape", async () => {
    const m = join(dir, "shape");
    cpSync(GPT2, m, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(m, "config.json"), "utf8"));
    writeFileSync(join(m, "config.json"), JSON.stringify({ ...cfg, vocab_size: 600 }));
    const r = await inspect(m);
    expect(r.code).toBe(1);
    expect(r.error).toContain("transformer.wte.weight has shape [512,64], expected [600,64]");
  });

  test("an unsupported dtype", async () => {
    const m = join(dir, "dtype");
    cpSync(GPT2, m, { recursive: true });
    // rewrite the checkpoint with one tensor stored as int64 (8 bytes per element)
    const raw = readFileSync(join(m, "model.safetensors"));
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    header["transformer.ln_f.bias"].dtype = "I64";
    header["transformer.ln_f.bias"].shape = [32]; // 64 f32 = 32 int64: the same bytes
    const hb = Buffer.from(JSON.stringify(header).padEnd(n, " "));
    writeFileSync(join(m, "model.safetensors"), Buffer.concat([raw.subarray(0, 8), hb, raw.subarray(8 + n)]));
    const r = await inspect(m);
    expect(r.code).toBe(1);
    expect(r.error).toContain("transformer.ln_f.bias");
    expect(r.error).toContain("I64");
  });

  test("an unknown architecture lists the supported ones", async () => {
    const m = join(dir, "arch");
    cpSync(GPT2, m, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(m, "config.json"), "utf8"));
    writeFileSync(join(m, "config.json"), JSON.stringify({ ...cfg, model_type: "mamba" }));
    const r = await inspect(m);
    expect(r.code).toBe(1);
    expect(r.error).toContain("mamba");
    expect(r.error).toMatch(/gpt2.*llama.*qwen2/);
  });

  test("a label word that is not one token names the word and its tokens", async () => {
    const spec = join(dir, "task.json");
    writeFileSync(join(dir, "t.jsonl"), Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `item ${i}`, label: i % 2 ? "xyzzyq" : "good" })).join("\n"));
    writeFileSync(spec, JSON.stringify({ name: "mine", in_prefix: "item: ", label_prefix: "label:", label_words: ["good", "xyzzyq"], files: { all: ["t.jsonl"] } }));
    const r = await abft(["prompts", "--model", join(SHARED, "models", "babygpt2"), "--task", spec, "--out", join(dir, "p.jsonl")]);
    expect(r.code).toBe(1);
    expect(r.error).toContain("xyzzyq");
  });

  test("babygpt2 (bf16) gives finite logits for an SST-2 prompt", async () => {
    const r = await abft(["inspect", "--model", join(SHARED, "models", "babygpt2"), "--text", "sentence: a fine film sentiment: positive\nsentence: a dull mess sentiment:", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.logits_last.length).toBe(50257);
    expect(out.logits_last.every(Number.isFinite)).toBe(true);
  });
});
