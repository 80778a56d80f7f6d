// Random-weight models with the real shapes of GPT-2 (124M, large, XL) and Llama-3-8B, built from
// a config (no download), for the benchmarks: as an in-memory tensor source, or written to disk as
// an HF folder (config.json + model.safetensors) to time loading.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TensorSource } from "../../models/weights.ts";
import { parseConfig, type ModelConfig } from "../../src/io/config.ts";
import type { Dtype, Tensor as StoredTensor } from "../../src/io/safetensors.ts";
import { writeSafetensors } from "../../src/io/safetensors_writer.ts";
import { Rng } from "../../src/util/random.ts";

const gpt2 = (n_embd: number, n_layer: number, n_head: number) => ({
  model_type: "gpt2", vocab_size: 50257, n_positions: 1024, n_embd, n_layer, n_head, n_inner: null,
  layer_norm_epsilon: 1e-5, activation_function: "gelu_new", tie_word_embeddings: true,
});

/** HF config.json contents of the benchmark shapes */
export const SHAPES: Record<string, Record<string, unknown>> = {
  "gpt2-124m": gpt2(768, 12, 12),
  "gpt2-large": gpt2(1280, 36, 20),
  "gpt2-xl": gpt2(1600, 48, 25),
  "llama-3-8b": {
    model_type: "llama", vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 500000, hidden_act: "silu", tie_word_embeddings: false, torch_dtype: "bfloat16", bos_token_id: 128000,
  },
  "qwen2.5-32b": {
    model_type: "qwen2", vocab_size: 152064, hidden_size: 5120, intermediate_size: 27648, num_hidden_layers: 64,
    num_attention_heads: 40, num_key_value_heads: 8, max_position_embeddings: 32768, rms_norm_eps: 1e-6,
    rope_theta: 1000000, hidden_act: "silu", tie_word_embeddings: false, torch_dtype: "bfloat16",
  },
};

export function shapeConfig(name: string): ModelConfig {
  const json = SHAPES[name];
  if (!json) throw new Error(`unknown benchmark shape ${name} (known: ${Object.keys(SHAPES).join(", ")})`);
  return parseConfig(json, name);
}

/** Tensor names and shapes of a checkpoint of this config, as HF names them. */
export function tensorShapes(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const C = c.hiddenSize;
  if (c.modelType === "gpt2") {
    m.set("transformer.wte.weight", [c.vocabSize, C]);
    m.set("transformer.wpe.weight", [c.maxPositions, C]);
    for (let l = 0; l < c.nLayers; l++) {
      const h = `transformer.h.${l}.`;
      for (const n of ["ln_1", "ln_2"]) {
        m.set(`${h}${n}.weight`, [C]);
        m.set(`${h}${n}.bias`, [C]);
      }
      m.set(`${h}attn.c_attn.weight`, [C, 3 * C]);
      m.set(`${h}attn.c_attn.bias`, [3 * C]);
      m.set(`${h}attn.c_proj.weight`, [C, C]);
      m.set(`${h}attn.c_proj.bias`, [C]);
      m.set(`${h}mlp.c_fc.weight`, [C, c.intermediateSize]);
      m.set(`${h}mlp.c_fc.bias`, [c.intermediateSize]);
      m.set(`${h}mlp.c_proj.weight`, [c.intermediateSize, C]);
      m.set(`${h}mlp.c_proj.bias`, [C]);
    }
    m.set("transformer.ln_f.weight", [C]);
    m.set("transformer.ln_f.bias", [C]);
    return m;
  }
  const { nHeads: NH, nKvHeads: NKV, headDim: HS, intermediateSize: F } = c;
  m.set("model.embed_tokens.weight", [c.vocabSize, C]);
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [C]);
    m.set(`${p}post_attention_layernorm.weight`, [C]);
    m.set(`${p}self_attn.q_proj.weight`, [NH * HS, C]);
    m.set(`${p}self_attn.k_proj.weight`, [NKV * HS, C]);
    m.set(`${p}self_attn.v_proj.weight`, [NKV * HS, C]);
    m.set(`${p}self_attn.o_proj.weight`, [C, NH * HS]);
    if (c.attentionBias) for (const x of ["q", "k", "v"]) m.set(`${p}self_attn.${x}_proj.bias`, [(x === "q" ? NH : NKV) * HS]);
    m.set(`${p}mlp.gate_proj.weight`, [F, C]);
    m.set(`${p}mlp.up_proj.weight`, [F, C]);
    m.set(`${p}mlp.down_proj.weight`, [C, F]);
  }
  m.set("model.norm.weight", [C]);
  if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, C]);
  return m;
}

/** Random values N(0, 0.02²) (norm weights around 1), generated when a tensor is asked for. */
export function randomSource(c: ModelConfig, dtype: Dtype = "F32", seed = 1): TensorSource & { bytes: number } {
  const shapes = tensorShapes(c);
  let bytes = 0;
  for (const s of shapes.values()) bytes += s.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : 2);
  return {
    bytes,
    names: () => [...shapes.keys()],
    has: (n) => shapes.has(n),
    get(name): StoredTensor {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`no tensor ${name}`);
      const n = shape.reduce((a, b) => a * b, 1);
      const rng = new Rng(seed ^ hash(name));
      const isNorm = /norm|ln_/.test(name) && name.endsWith("weight");
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = (isNorm ? 1 : 0) + 0.02 * (rng.next() * 2 - 1) * 1.7;
      if (dtype === "F32") return { name, dtype, shape, data: f };
      const u = new Uint32Array(f.buffer);
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = u[i] >>> 16; // bf16 by truncation: fine for random weights
      return { name, dtype: "BF16", shape, data: h };
    },
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Writes config.json + model.safetensors of random weights into dir, one tensor in memory at a
 * time (Llama-3-8B is 16 GB); returns the bytes written.
 */
export function writeRandomModel(name: string, dir: string, dtype: Dtype = "F32"): number {
  const c = shapeConfig(name);
  const src = randomSource(c, dtype);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(SHAPES[name], null, 2));
  const shapes = tensorShapes(c);
  const tensors = new Map(src.names().map((n) => [n, { dtype, shape: shapes.get(n)!, data: () => src.get(n).data }]));
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return src.bytes;
}
