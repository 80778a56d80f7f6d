// config.json normalisation: every fixture config, both key styles (older rope_theta / rope_scaling /
// torch_dtype, newer rope_parameters / dtype), llama3 RoPE scaling in both, GPT-2 names and
// defaults, and errors that name the file and the key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, SUPPORTED_MODEL_TYPES, loadConfig, parseConfig, type ModelConfig, type RopeScaling } from "../../src/io/config.ts";
import { SHARED } from "../helpers.ts";

const FX = join(SHARED, "fixtures");
const read = (p: string) => JSON.parse(readFileSync(p, "utf8"));
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "abft-cfg-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LLAMA_SMALL = {
  vocabSize: 512,
  hiddenSize: 64,
  nLayers: 3,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 16,
  intermediateSize: 160,
  maxPositions: 256,
  tieWordEmbeddings: false,
  attentionBias: false,
  oProjBias: false,
  mlpBias: false,
  hiddenAct: "silu",
  normEps: 1e-5,
  ropeTheta: 500000,
  bosTokenId: 1,
  eosTokenId: 2,
  eosTokenIds: [2],
};

function expectConfigError(fn: () => unknown, code: string, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).code).toBe(code);
  expect((err as ConfigError).message).not.toContain("\n");
  for (const p of parts) expect((err as ConfigError).message).toContain(p);
}

describe("fixture configs", () => {
  test("gpt2: n_embd / n_layer / n_head / n_positions, n_inner null → 4·C, tied, biases", () => {
    const c = loadConfig(join(FX, "gpt2"));
    expect(c).toEqual({
      modelType: "gpt2",
      vocabSize: 512,
      hiddenSize: 64,
      nLayers: 3,
      nHeads: 4,
      nKvHeads: 4,
      headDim: 16,
      intermediateSize: 256,
      maxPositions: 128,
      normEps: 1e-5,
      ropeTheta: 0,
      ropeScaling: null,
      tieWordEmbeddings: true,
      attentionBias: true,
      oProjBias: true,
      mlpBias: true,
      hiddenAct: "gelu_new",
      dtype: "float32",
      bosTokenId: 50256,
      eosTokenId: 50256,
      eosTokenIds: [50256],
    } satisfies ModelConfig);
  });

  test("llama in the older key style (rope_theta, rope_scaling null, torch_dtype)", () => {
    const c = loadConfig(join(FX, "llama/config.json"));
    expect(c).toMatchObject({ modelType: "llama", ...LLAMA_SMALL, ropeScaling: null, dtype: "float32" });
  });

  test("llama-bf16 and llama-sharded in the newer style (rope_parameters, dtype) give the same numbers", () => {
    const bf = loadConfig(join(FX, "llama-bf16"));
    const sh = loadConfig(join(FX, "llama-sharded"));
    expect(bf).toMatchObject({ modelType: "llama", ...LLAMA_SMALL, ropeScaling: { type: "default" }, dtype: "bfloat16" });
    expect(sh).toEqual({ ...bf, dtype: "float32" });
  });

  test("qwen2: q/k/v biases, tied embeddings, rms eps 1e-6, theta 1e6, no bos/eos", () => {
    const c = loadConfig(join(FX, "qwen2"));
    expect(c).toMatchObject({
      modelType: "qwen2",
      nHeads: 4,
      nKvHeads: 2,
      headDim: 16,
      attentionBias: true,
      oProjBias: false,
      mlpBias: false,
      tieWordEmbeddings: true,
      normEps: 1e-6,
      ropeTheta: 1e6,
      bosTokenId: null,
      eosTokenId: null,
      eosTokenIds: [],
    });
  });

  test("babygpt2: bf16, 6 layers, 256 wide, 8 heads, 512 positions, real GPT-2 vocabulary", () => {
    const c = loadConfig(join(SHARED, "models/babygpt2"));
    expect(c).toMatchObject({ modelType: "gpt2", dtype: "bfloat16", nLayers: 6, hiddenSize: 256, nHeads: 8, headDim: 32, maxPositions: 512, vocabSize: 50257, intermediateSize: 1024 });
  });
});

describe("RoPE scaling", () => {
  const llama31Old = () => ({
    ...read(join(FX, "llama/config.json")),
    rope_theta: 500000.0,
    rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
    max_position_embeddings: 131072,
    eos_token_id: [128001, 128008, 128009],
    bos_token_id: 128000,
  });
  const want: RopeScaling = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };

  test("llama3 scaling in the older style (rope_scaling with rope_type, or with type)", () => {
    const c = parseConfig(llama31Old());
    expect(c.ropeScaling).toEqual(want);
    expect(c.ropeTheta).toBe(500000);
    expect(c.maxPositions).toBe(131072);
    expect(c.eosTokenId).toBe(128001);
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
    const older = llama31Old();
    older.rope_scaling = { ...older.rope_scaling, type: "llama3" } as any;
    delete (older.rope_scaling as any).rope_type;
    expect(parseConfig(older).ropeScaling).toEqual(want);
  });

  test("llama3 scaling in the newer style (rope_parameters) gives the same config", () => {
    const old = llama31Old();
    const { rope_theta, rope_scaling, torch_dtype, ...rest } = old;
    const newer = { ...rest, dtype: torch_dtype, rope_parameters: { rope_theta, ...rope_scaling } };
    expect(parseConfig(newer)).toEqual(parseConfig(old));
    expect(parseConfig({ ...newer, rope_parameters: { ...newer.rope_parameters, rope_theta: 12345 } }).ropeTheta).toBe(12345);
  });

  test("missing rope_theta defaults to 10000; other scalings are refused by name", () => {
    const { rope_theta, ...noTheta } = read(join(FX, "llama/config.json"));
    expect(parseConfig(noTheta).ropeTheta).toBe(10000);
    expectConfigError(() => parseConfig({ ...noTheta, rope_scaling: { type: "yarn", factor: 4 } }, "x/config.json"), "UNSUPPORTED_ROPE", "x/config.json", "yarn", "llama3");
    expectConfigError(() => parseConfig({ ...noTheta, rope_scaling: { rope_type: "llama3", factor: 8 } }, "x/config.json"), "BAD_CONFIG", "low_freq_factor");
  });
});

describe("errors", () => {
  test("an unknown model_type lists the supported ones", () => {
    const mistral = { ...read(join(FX, "llama/config.json")), model_type: "mistral" };
    expectConfigError(() => parseConfig(mistral, "m/config.json"), "UNSUPPORTED_MODEL", "m/config.json", "mistral", ...SUPPORTED_MODEL_TYPES);
  });

  test("missing keys, bad values, inconsistent heads", () => {
    const base = read(join(FX, "llama/config.json"));
    const { hidden_size, ...noHidden } = base;
    expectConfigError(() => parseConfig(noHidden, "a/config.json"), "BAD_CONFIG", "a/config.json", "hidden_size");
    expectConfigError(() => parseConfig({ ...base, num_attention_heads: "4" }), "BAD_CONFIG", "num_attention_heads");
    expectConfigError(() => parseConfig({ ...base, num_key_value_heads: 3 }), "BAD_CONFIG", "num_key_value_heads");
    expectConfigError(() => parseConfig({ ...base, torch_dtype: "int8" }), "BAD_CONFIG", "int8");
    expectConfigError(() => parseConfig([1, 2]), "BAD_CONFIG", "not a JSON object");
    const { model_type, ...noType } = base;
    expectConfigError(() => parseConfig(noType), "BAD_CONFIG", "model_type", "gpt2, llama, qwen2");
  });

  test("a missing folder, a folder without config.json, and invalid JSON", () => {
    expectConfigError(() => loadConfig(join(tmp, "nope")), "MISSING_FILE", "nope");
    const empty = join(tmp, "empty");
    mkdirSync(empty, { recursive: true });
    expectConfigError(() => loadConfig(empty), "MISSING_CONFIG", "no config.json");
    const bad = join(tmp, "bad");
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, "config.json"), "{ not json");
    expectConfigError(() => loadConfig(bad), "BAD_CONFIG", "config.json", "not valid JSON");
  });

  test("defaults: missing num_key_value_heads → MHA, missing head_dim → C / NH, gpt2 n_inner given", () => {
    const { num_key_value_heads, head_dim, ...rest } = read(join(FX, "llama/config.json"));
    const c = parseConfig(rest);
    expect(c.nKvHeads).toBe(4);
    expect(c.headDim).toBe(16);
    const g = parseConfig({ ...read(join(FX, "gpt2/config.json")), n_inner: 100, tie_word_embeddings: false });
    expect(g.intermediateSize).toBe(100);
    expect(g.tieWordEmbeddings).toBe(false);
  });
});
