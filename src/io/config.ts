// config.json of a HF checkpoint → one typed ModelConfig for every supported family.
//
// The hub has configs in two key styles, and both are read:
//   older (transformers < 5): rope_theta, rope_scaling {rope_type | type, factor, ...}, torch_dtype
//   newer (transformers >= 5): rope_parameters {rope_theta, rope_type, factor, ...}, dtype
// GPT-2 has its own names (n_embd, n_layer, n_head, n_positions, layer_norm_epsilon, n_inner).
// Defaults follow transformers' configuration_gpt2.py / configuration_llama.py / configuration_qwen2.py.
// HF key names appear only here (and in the other src/io files).
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { AbftError } from "../gpu/errors.ts";

export type ModelType = "gpt2" | "llama" | "qwen2";
export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = ["gpt2", "llama", "qwen2"];

/**
 * RoPE frequency scaling. null: none given; {type:"default"}: the config says "default" explicitly
 * (same frequencies as null); llama3: Llama-3.1's piecewise scaling of the inverse frequencies.
 */
export type RopeScaling =
  | null
  | { type: "default" }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export type ConfigDtype = "float32" | "bfloat16" | "float16";

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  /** C */
  hiddenSize: number;
  /** L */
  nLayers: number;
  /** NH: query heads */
  nHeads: number;
  /** key/value heads (grouped-query attention); = nHeads for gpt2 */
  nKvHeads: number;
  /** HS */
  headDim: number;
  /** MLP width (gpt2: n_inner, or 4·C when null) */
  intermediateSize: number;
  maxPositions: number;
  /** LayerNorm eps (gpt2) or RMSNorm eps (llama, qwen2) */
  normEps: number;
  /** RoPE base; 0 for gpt2 (learned positions) */
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (gpt2: c_attn bias; qwen2: always; llama: attention_bias) */
  attentionBias: boolean;
  /** the attention output projection has a bias (gpt2: c_proj; llama: attention_bias; qwen2: no) */
  oProjBias: boolean;
  /** the MLP projections have biases (gpt2: yes; llama: mlp_bias; qwen2: no) */
  mlpBias: boolean;
  /** activation in the MLP: gpt2 "gelu_new", llama/qwen2 "silu" */
  hiddenAct: string;
  /** the dtype the config declares (the weights' own dtype is what the loader reads) */
  dtype: ConfigDtype;
  bosTokenId: number | null;
  /** the first end-of-sequence id (configs may list several) */
  eosTokenId: number | null;
  eosTokenIds: number[];
}

/** A config.json that cannot be used: the message names the file and the key. */
export class ConfigError extends AbftError {
  constructor(message: string, code = "BAD_CONFIG", hint?: string) {
    super(message, code, hint);
  }
}

/** Reads `<dir>/config.json` (or the given .json file) and parses it. */
export function loadConfig(dirOrFile: string): ModelConfig {
  if (!existsSync(dirOrFile)) throw new ConfigError(`${dirOrFile}: no such file or folder`, "MISSING_FILE");
  const file = statSync(dirOrFile).isDirectory() ? join(dirOrFile, "config.json") : dirOrFile;
  if (!existsSync(file)) {
    throw new ConfigError(`${dirOrFile}: no config.json in this folder`, "MISSING_CONFIG", "point --model at a HF checkpoint folder or a hub repo id");
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file);
}

/** Normalises a parsed config.json. `source` names the file in error messages. */
export function parseConfig(json: unknown, source = "config.json"): ModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new ConfigError(`${source}: not a JSON object`);
  const c = json as Record<string, unknown>;
  const err = (what: string) => new ConfigError(`${source}: ${what}`);
  const num = (key: string, fallback?: number): number => {
    const v = c[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw err(`missing ${key}`);
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw err(`${key} is not a number (${JSON.stringify(v)})`);
    return v;
  };
  const int = (key: string, fallback?: number): number => {
    const v = num(key, fallback);
    if (!Number.isInteger(v) || v <= 0) throw err(`${key} must be a positive integer (got ${v})`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw err(`${key} is not true/false (${JSON.stringify(v)})`);
    return v;
  };

  const mt = c.model_type;
  if (typeof mt !== "string") throw err(`missing model_type (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt)) {
    throw new ConfigError(
      `${source}: unsupported model_type "${mt}"; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`,
      "UNSUPPORTED_MODEL",
    );
  }
  const modelType = mt as ModelType;
  const dtype = parseDtype(c, err);
  const eosTokenIds = tokenIds(c.eos_token_id, "eos_token_id", err);
  const bos = tokenIds(c.bos_token_id, "bos_token_id", err);
  const common = {
    vocabSize: int("vocab_size"),
    dtype,
    bosTokenId: bos.length ? bos[0] : null,
    eosTokenId: eosTokenIds.length ? eosTokenIds[0] : null,
    eosTokenIds,
  };

  if (modelType === "gpt2") {
    const hiddenSize = int("n_embd");
    const nHeads = int("n_head");
    if (hiddenSize % nHeads) throw err(`n_embd ${hiddenSize} is not a multiple of n_head ${nHeads}`);
    return {
      modelType,
      ...common,
      hiddenSize,
      nLayers: int("n_layer"),
      nHeads,
      nKvHeads: nHeads,
      headDim: hiddenSize / nHeads,
      intermediateSize: int("n_inner", 4 * hiddenSize),
      maxPositions: int("n_positions"),
      normEps: num("layer_norm_epsilon", 1e-5),
      ropeTheta: 0,
      ropeScaling: null,
      tieWordEmbeddings: bool("tie_word_embeddings", true),
      attentionBias: true,
      oProjBias: true,
      mlpBias: true,
      hiddenAct: typeof c.activation_function === "string" ? c.activation_function : "gelu_new",
    };
  }

  // llama and qwen2
  const hiddenSize = int("hidden_size");
  const nHeads = int("num_attention_heads");
  const nKvHeads = int("num_key_value_heads", nHeads);
  if (nHeads % nKvHeads) throw err(`num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  if (c.head_dim == null && hiddenSize % nHeads) throw err(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${nHeads}`);
  const headDim = int("head_dim", hiddenSize / nHeads);
  const { ropeTheta, ropeScaling } = parseRope(c, source);
  const llamaBias = bool("attention_bias", false);
  return {
    modelType,
    ...common,
    hiddenSize,
    nLayers: int("num_hidden_layers"),
    nHeads,
    nKvHeads,
    headDim,
    intermediateSize: int("intermediate_size"),
    maxPositions: int("max_position_embeddings"),
    normEps: num("rms_norm_eps", 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: bool("tie_word_embeddings", false),
    attentionBias: modelType === "qwen2" ? true : llamaBias,
    oProjBias: modelType === "qwen2" ? false : llamaBias,
    mlpBias: modelType === "qwen2" ? false : bool("mlp_bias", false),
    hiddenAct: typeof c.hidden_act === "string" ? c.hidden_act : "silu",
  };
}

function parseDtype(c: Record<string, unknown>, err: (w: string) => ConfigError): ConfigDtype {
  const v = c.dtype ?? c.torch_dtype ?? "float32";
  if (v === "float32" || v === "bfloat16" || v === "float16") return v;
  throw err(`dtype ${JSON.stringify(v)} is not one of float32, bfloat16, float16`);
}

function tokenIds(v: unknown, key: string, err: (w: string) => ConfigError): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isInteger(x) && x >= 0)) throw err(`${key} is not a token id or a list of them (${JSON.stringify(v)})`);
  return list as number[];
}

/**
 * RoPE parameters from either style. The newer `rope_parameters` wins when both are present
 * (transformers 5 converts the older keys into it). Supported scalings: default and llama3.
 */
function parseRope(c: Record<string, unknown>, source: string): { ropeTheta: number; ropeScaling: RopeScaling } {
  const err = (what: string) => new ConfigError(`${source}: ${what}`);
  const rp = c.rope_parameters;
  const rs = c.rope_scaling;
  let params: Record<string, unknown> | null = null;
  let where = "";
  if (rp !== undefined && rp !== null) {
    if (typeof rp !== "object" || Array.isArray(rp)) throw err("rope_parameters is not an object");
    params = rp as Record<string, unknown>;
    where = "rope_parameters";
  } else if (rs !== undefined && rs !== null) {
    if (typeof rs !== "object" || Array.isArray(rs)) throw err("rope_scaling is not an object");
    params = rs as Record<string, unknown>;
    where = "rope_scaling";
  }
  const thetaRaw = (where === "rope_parameters" ? params?.rope_theta : undefined) ?? c.rope_theta ?? 10000;
  if (typeof thetaRaw !== "number" || !(thetaRaw > 0)) throw err(`rope_theta is not a positive number (${JSON.stringify(thetaRaw)})`);
  if (!params) return { ropeTheta: thetaRaw, ropeScaling: null };

  const type = params.rope_type ?? params.type;
  if (type === undefined || type === "default") return { ropeTheta: thetaRaw, ropeScaling: { type: "default" } };
  if (type !== "llama3") {
    throw new ConfigError(
      `${source}: ${where}: RoPE scaling type ${JSON.stringify(type)} is not supported (supported: default, llama3)`,
      "UNSUPPORTED_ROPE",
    );
  }
  const need = (key: string): number => {
    const v = params![key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw err(`${where}.${key} is missing or not a positive number`);
    return v;
  };
  const scaling = {
    type: "llama3" as const,
    factor: need("factor"),
    lowFreqFactor: need("low_freq_factor"),
    highFreqFactor: need("high_freq_factor"),
    originalMaxPositions: need("original_max_position_embeddings"),
  };
  if (!(scaling.highFreqFactor > scaling.lowFreqFactor)) {
    throw err(`${where}: high_freq_factor (${scaling.highFreqFactor}) must exceed low_freq_factor (${scaling.lowFreqFactor})`);
  }
  return { ropeTheta: thetaRaw, ropeScaling: scaling };
}
