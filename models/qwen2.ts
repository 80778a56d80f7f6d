// Qwen2 family (HF transformers `modeling_qwen2.py`): Qwen2 / Qwen2.5, DeepSeek-R1-Distill-Qwen,
// s1.1. The llama architecture with biases on the q, k and v projections (none on o_proj or the
// MLP), usually tied embeddings, and RMSNorm eps 1e-6. models/llama.ts reads the biases when the
// checkpoint has them and requires them when the config says so (config.attentionBias, always
// true for qwen2), so the same class serves both.
import type { Runtime } from "../src/gpu/runtime.ts";
import type { ModelConfig } from "../src/io/config.ts";
import type { LoadOptions, TensorSource } from "./weights.ts";
import { Llama } from "./llama.ts";

export function loadQwen2(rt: Runtime, config: ModelConfig, ckpt: TensorSource, opts: LoadOptions = {}): Llama {
  if (!config.attentionBias) throw new Error("qwen2 config without attention biases: not a Qwen2 checkpoint");
  return Llama.load(rt, config, ckpt, opts);
}
