// Architectures by the `model_type` of config.json (the transformers.js way: a plain map).
import type { Runtime } from "../src/gpu/runtime.ts";
import { SUPPORTED_MODEL_TYPES, type ModelConfig, type ModelType } from "../src/io/config.ts";
import type { LanguageModel } from "./common.ts";
import type { LoadOptions, TensorSource } from "./weights.ts";
import { Gpt2 } from "./gpt2.ts";
import { Llama } from "./llama.ts";
import { loadQwen2 } from "./qwen2.ts";

type Loader = (rt: Runtime, config: ModelConfig, ckpt: TensorSource, opts: LoadOptions) => LanguageModel;

export const ARCHITECTURES: Record<ModelType, Loader> = {
  gpt2: (rt, c, ck, o) => Gpt2.load(rt, c, ck, o),
  llama: (rt, c, ck, o) => Llama.load(rt, c, ck, o),
  qwen2: (rt, c, ck, o) => loadQwen2(rt, c, ck, o),
};

export function buildModel(rt: Runtime, config: ModelConfig, ckpt: TensorSource, opts: LoadOptions = {}): LanguageModel {
  const load = ARCHITECTURES[config.modelType];
  if (!load) throw new Error(`unknown model_type '${config.modelType}' (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`);
  return load(rt, config, ckpt, opts);
}
