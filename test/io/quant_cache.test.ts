// The on-disk cache of quantized models (src/io/quant_cache.ts through src/cli/load.ts
// buildModelCached), on the tiny fixture models: the first load writes the cache, the next one
// takes every quantized weight from it without reading their checkpoint tensors (counted through a
// wrapped TensorSource) and gives the same logits bit for bit; broken or foreign files are ignored
// with one warning and written again; formats, LoRA and local-folder revisions get the entries
// they should.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { LanguageModel } from "../../models/common.ts";
import type { TensorSource } from "../../models/weights.ts";
import { makeBatch } from "../../models/common.ts";
import { buildModelCached } from "../../src/cli/load.ts";
import type { Runtime } from "../../src/gpu/runtime.ts";
import { loadConfig } from "../../src/io/config.ts";
import { quantCacheKey, quantCachePath, quantCacheRoot, QuantCacheFile } from "../../src/io/quant_cache.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import type { QuantFormat } from "../../src/ops/quant.ts";
import { noGrad } from "../../src/tensor/autodiff.ts";
import { lmHead } from "../../src/tensor/ops.ts";
import { fromArray, scope } from "../../src/tensor/tensor.ts";
import { gpuRuntime, SHARED } from "../helpers.ts";

const FX = join(SHARED, "fixtures");
let root: string; // the cache root of each test
let scratch: string; // writable model folders
const roots: string[] = [];
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "abft-qc-models-"));
});
afterAll(() => {
  for (const d of [scratch, ...roots]) rmSync(d, { recursive: true, force: true });
});

function freshRoot(): string {
  root = mkdtempSync(join(tmpdir(), "abft-qc-"));
  roots.push(root);
  return root;
}

/** a Checkpoint whose get() calls are counted by name */
function counting(dir: string): { src: TensorSource; gets: Map<string, number>; close(): void } {
  const ck = Checkpoint.open(dir);
  const gets = new Map<string, number>();
  const src: TensorSource = {
    names: () => ck.names(),
    has: (n) => ck.has(n),
    get: (n) => {
      gets.set(n, (gets.get(n) ?? 0) + 1);
      return ck.get(n);
    },
  };
  return { src, gets, close: () => ck.close() };
}

interface Loaded {
  model: LanguageModel;
  gets: Map<string, number>;
  log: string[];
}

async function load(rt: Runtime, dir: string, quant: QuantFormat | "none", o: { lora?: boolean; quantCache?: boolean } = {}): Promise<Loaded> {
  const c = counting(dir);
  const log: string[] = [];
  try {
    const model = await buildModelCached(rt, { dir, config: loadConfig(dir) }, c.src, { quant, lora: o.lora, quantCache: o.quantCache ?? true, quantCacheRoot: root }, (l) => log.push(l));
    return { model, gets: c.gets, log };
  } finally {
    c.close();
  }
}

/** last-position logits of the fixture's first case, as raw f32 bits */
async function logits(rt: Runtime, model: LanguageModel, dir: string): Promise<Uint32Array> {
  const ids: number[] = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")).cases[0].input_ids;
  const batch = makeBatch(rt, [ids]);
  const out = noGrad(() =>
    scope(() => {
      const res = model.forward(batch);
      return lmHead(res.hidden, model.headWeight(), fromArray(rt, new Uint32Array([ids.length - 1]), [1]));
    }),
  );
  const v = await out.toF32();
  out.free();
  for (const t of [batch.ids, batch.positions, batch.lengthsT]) t.free();
  return new Uint32Array(v.buffer);
}

/** reads of checkpoint tensors whose name matches */
const reads = (gets: Map<string, number>, re: RegExp) => [...gets].filter(([n]) => re.test(n)).reduce((s, [, c]) => s + c, 0);

const GPT2_MATS = /attn\.c_attn\.weight|c_proj\.weight|c_fc\.weight/; // every matrix GPT-2 quantizes with LoRA
const LLAMA_FROZEN = /(v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight/; // what llama quantizes without LoRA

function cacheFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p.slice(root.length + 1));
    }
  };
  walk(root);
  return out.sort();
}

describe("quantized-model cache", () => {
  test("a second load takes every quantized weight from the cache, reads none of their tensors, and gives the same logits", async () => {
    const rt = await gpuRuntime();
    for (const [name, quant, lora, frozen] of [["gpt2", "nf4", true, GPT2_MATS], ["llama-bf16", "int8", false, LLAMA_FROZEN]] as const) {
      freshRoot();
      const dir = join(FX, name);
      const plain = await load(rt, dir, quant, { lora, quantCache: false });
      const want = await logits(rt, plain.model, dir);
      plain.model.dispose();
      expect(cacheFiles()).toEqual([]);

      const first = await load(rt, dir, quant, { lora });
      expect(reads(first.gets, frozen)).toBeGreaterThan(0);
      expect(first.log.filter((l) => l.includes("warning"))).toEqual([]);
      expect(first.log.some((l) => /wrote \d+ \w+ weights/.test(l))).toBe(true);
      const path = quantCachePath(root, quantCacheKey({ dir }, quant));
      expect(cacheFiles()).toEqual([path.slice(root.length + 1)]);
      expect(await logits(rt, first.model, dir)).toEqual(want);
      first.model.dispose();
      const written = statSync(path).mtimeMs;

      const second = await load(rt, dir, quant, { lora });
      expect(reads(second.gets, frozen)).toBe(0);
      expect(reads(second.gets, /./)).toBeGreaterThan(0); // embeddings, norms, biases still come from the checkpoint
      expect(second.log.some((l) => l.includes("from the cache"))).toBe(true);
      expect(second.log.some((l) => l.includes("wrote"))).toBe(false);
      expect(statSync(path).mtimeMs).toBe(written);
      expect(await logits(rt, second.model, dir)).toEqual(want);
      second.model.dispose();
    }
  });

  test("a truncated cache file is ignored with a one-line warning and written again", async () => {
    const rt = await gpuRuntime();
    freshRoot();
    const dir = join(FX, "gpt2");
    const first = await load(rt, dir, "nf4", { lora: true });
    const want = await logits(rt, first.model, dir);
    first.model.dispose();
    const path = quantCachePath(root, quantCacheKey({ dir }, "nf4"));
    const good = readFileSync(path);
    for (const size of [Math.floor(good.length / 2), good.length - 4, 5]) {
      truncateSync(path, size);
      const again = await load(rt, dir, "nf4", { lora: true });
      const warnings = again.log.filter((l) => l.includes("warning"));
      if (process.env.VERBOSE) console.log(again.log.join("\n"));
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toContain(path);
      expect(warnings[0].split("\n").length).toBe(1);
      expect(reads(again.gets, GPT2_MATS)).toBeGreaterThan(0); // quantized again from the checkpoint
      expect(await logits(rt, again.model, dir)).toEqual(want);
      again.model.dispose();
      expect(Buffer.compare(readFileSync(path), good)).toBe(0); // rebuilt, byte for byte
    }
    const last = await load(rt, dir, "nf4", { lora: true });
    expect(reads(last.gets, GPT2_MATS)).toBe(0);
    last.model.dispose();
  });

  test("a file made for another model or with a foreign header is stale: warned about and replaced", async () => {
    const rt = await gpuRuntime();
    freshRoot();
    const dir = join(FX, "gpt2");
    const copy = join(scratch, "gpt2-copy");
    cpSync(dir, copy, { recursive: true });
    (await load(rt, dir, "nf4")).model.dispose();
    const theirs = quantCachePath(root, quantCacheKey({ dir }, "nf4"));
    const ours = quantCachePath(root, quantCacheKey({ dir: copy }, "nf4"));
    expect(ours).not.toBe(theirs);
    // the original's file where the copy's belongs: right format and shapes, wrong model
    cpSync(dirname(theirs), dirname(ours), { recursive: true });
    const a = await load(rt, copy, "nf4");
    if (process.env.VERBOSE) console.log(a.log.join("\n"));
    expect(a.log.filter((l) => l.includes("warning")).length).toBe(1);
    expect(a.log.find((l) => l.includes("warning"))).toContain("made for model");
    expect(reads(a.gets, /c_proj\.weight|c_fc\.weight/)).toBeGreaterThan(0);
    a.model.dispose();
    const f = QuantCacheFile.open(ours, quantCacheKey({ dir: copy }, "nf4"));
    expect(typeof f).not.toBe("string");
    if (typeof f !== "string") f.close();
    // not a safetensors file at all
    writeFileSync(ours, "this is not a cache file, but long enough");
    const b = await load(rt, copy, "nf4");
    if (process.env.VERBOSE) console.log(b.log.join("\n"));
    expect(b.log.filter((l) => l.includes("warning")).length).toBe(1);
    b.model.dispose();
    const c = await load(rt, copy, "nf4");
    expect(c.log.filter((l) => l.includes("warning"))).toEqual([]);
    expect(reads(c.gets, /c_proj\.weight|c_fc\.weight/)).toBe(0);
    c.model.dispose();
  });

  test("each format gets its own entry; LoRA and plain loads share one file", async () => {
    const rt = await gpuRuntime();
    freshRoot();
    const dir = join(FX, "gpt2");
    const nf4 = quantCachePath(root, quantCacheKey({ dir }, "nf4"));
    const int8 = quantCachePath(root, quantCacheKey({ dir }, "int8"));
    expect(nf4).not.toBe(int8);
    expect(dirname(nf4)).toBe(dirname(int8));
    // without LoRA W_Q/W_K stay f32: the file lacks them; a LoRA load adds them, and keeps the rest
    (await load(rt, dir, "nf4")).model.dispose();
    const names = (p: string, fmt: QuantFormat) => {
      const f = QuantCacheFile.open(p, quantCacheKey({ dir }, fmt));
      if (typeof f === "string") throw new Error(f);
      const n = [...f.entries.keys()].sort();
      f.close();
      return n;
    };
    const plainNames = names(nf4, "nf4");
    expect(plainNames.some((n) => n.endsWith("attn.q"))).toBe(false);
    const withLora = await load(rt, dir, "nf4", { lora: true });
    expect(reads(withLora.gets, /c_proj\.weight|c_fc\.weight/)).toBe(0);
    expect(reads(withLora.gets, /c_attn\.weight/)).toBeGreaterThan(0); // W_Q/W_K quantized now
    withLora.model.dispose();
    const allNames = names(nf4, "nf4");
    expect(allNames.filter((n) => /attn\.[qk]$/.test(n)).length).toBe(2 * loadConfig(dir).nLayers);
    expect(plainNames.every((n) => allNames.includes(n))).toBe(true);
    for (const lora of [false, true]) {
      const l = await load(rt, dir, "nf4", { lora });
      expect(reads(l.gets, lora ? GPT2_MATS : /c_proj\.weight|c_fc\.weight/)).toBe(0);
      expect(l.log.some((x) => x.includes("wrote"))).toBe(false);
      l.model.dispose();
    }
    // int8: a second file beside the first
    const i1 = await load(rt, dir, "int8");
    expect(reads(i1.gets, /c_proj\.weight|c_fc\.weight/)).toBeGreaterThan(0);
    i1.model.dispose();
    expect(existsSync(int8) && existsSync(nf4)).toBe(true);
    const i2 = await load(rt, dir, "int8");
    expect(reads(i2.gets, /c_proj\.weight|c_fc\.weight/)).toBe(0);
    i2.model.dispose();
    expect(cacheFiles().length).toBe(2);
  });

  test("a local folder's entry follows its weights: a newer mtime is a new revision, the old one is removed", async () => {
    const rt = await gpuRuntime();
    freshRoot();
    const dir = join(scratch, "llama-local");
    cpSync(join(FX, "llama"), dir, { recursive: true });
    const k1 = quantCacheKey({ dir }, "nf4");
    expect(quantCacheKey({ dir }, "nf4")).toEqual(k1);
    (await load(rt, dir, "nf4")).model.dispose();
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, "model.safetensors"), later, later);
    const k2 = quantCacheKey({ dir }, "nf4");
    expect(k2.revision).not.toBe(k1.revision);
    expect(dirname(k2.folder)).toBe(dirname(k1.folder));
    const l = await load(rt, dir, "nf4");
    expect(reads(l.gets, LLAMA_FROZEN)).toBeGreaterThan(0);
    expect(l.log.filter((x) => x.includes("warning"))).toEqual([]);
    l.model.dispose();
    expect(cacheFiles()).toEqual([quantCachePath(root, k2).slice(root.length + 1)]);
  });

  test("where the cache lives and when it is on", async () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const hub = quantCacheKey({ dir: "/nowhere", repoId: "org/name", revision: commit }, "nf4dq");
    expect(hub).toEqual({ model: "org/name", revision: commit, format: "nf4dq", folder: join("models--org--name", commit) });
    expect(quantCachePath("/r", hub)).toBe(join("/r", "models--org--name", commit, "nf4dq.safetensors"));
    expect(quantCacheRoot({ HF_HUB_CACHE: "/x/hub" })).toBe("/x/abft-quantized");
    expect(quantCacheRoot({ HF_HOME: "/h" })).toBe("/h/abft-quantized");
    expect(quantCacheRoot({ HF_HOME: "/h", ABFT_QUANT_CACHE: "/y" })).toBe("/y");
    expect(quantCacheRoot({ ABFT_QUANT_CACHE: "off" })).toBeNull();
    const local = quantCacheKey({ dir: join(FX, "gpt2") }, "nf4");
    expect(local.folder).toMatch(/^local--gpt2--[0-9a-f]{12}\/[0-9a-f]{16}$/);
    // default: off for a local folder; no quantization: never
    const rt = await gpuRuntime();
    freshRoot();
    const dir = join(FX, "gpt2");
    const c = counting(dir);
    const m1 = await buildModelCached(rt, { dir, config: loadConfig(dir) }, c.src, { quant: "nf4", quantCacheRoot: root }, () => {});
    const m2 = await buildModelCached(rt, { dir, config: loadConfig(dir) }, c.src, { quant: "none", quantCache: true, quantCacheRoot: root }, () => {});
    c.close();
    m1.dispose();
    m2.dispose();
    expect(cacheFiles()).toEqual([]);
  });
});
