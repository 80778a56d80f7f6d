// Architectures by the `model_type` of config.json (the transformers.js way: a plain map).
import type { Runtime } from "../src/gpu/runtime.ts";
import { SUPPORTED_MODEL_TYPES, type ModelConfig, type ModelType } from "../src/io/config.ts";
import type { LanguageModel, TensorSource } from "./common.ts";
import { Gpt2 } from "./gpt2.ts";
import { Llama } from "./llama.ts";
import { loadQwen2 } from "./qwen2.ts";

type Loader = (rt: Runtime, config: ModelConfig, ckpt: TensorSource) => LanguageModel;

export const ARCHITECTURES: Record<ModelType, Loader> = {
  gpt2: (rt, c, ck) => Gpt2.load(rt, c, ck),
  llama: (rt, c, ck) => Llama.load(rt, c, ck),
  qwen2: (rt, c, ck) => loadQwen2(rt, c, ck),
};

export function buildModel(rt: Runtime, config: ModelConfig, ckpt: TensorSource): LanguageModel {
  const load = ARCHITECTURES[config.modelType];
  if (!load) throw new Error(`unknown model_type '${config.modelType}' (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`);
  return load(rt, config, ckpt);
}
