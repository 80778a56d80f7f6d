// LoRA adapters as a PEFT folder (adapter_config.json + adapter_model.safetensors with PEFT's tensor
// names) that `PeftModel.from_pretrained(base, folder)` loads onto the base model.
// Llama/Qwen2: LoRA on q_proj and k_proj, as trained. GPT-2's W_Q and W_K live in the fused Conv1D
// c_attn [C, 3C], which PEFT adapts as one module: we write one adapter of rank 2r on c_attn whose
// A stacks A_q over A_k and whose B is block-diagonal (B_q on the Q rows, B_k on the K rows, zero on
// V), with lora_alpha doubled so that alpha/rank, the scale, is unchanged. Its update is exactly
// the sum of the two trained ones.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LanguageModel, QkParam } from "../../models/common.ts";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors_writer.ts";

export async function savePeftAdapter(dir: string, model: LanguageModel, params: QkParam[], baseModel: string, revision?: string): Promise<string> {
  const lora = model.loraConfig();
  if (!lora) throw new Error("savePeftAdapter: the model has no LoRA adapters");
  mkdirSync(dir, { recursive: true });
  const get = async (layer: number, kind: QkParam["kind"]) => {
    const p = params.find((x) => x.layer === layer && x.kind === kind);
    if (!p) throw new Error(`savePeftAdapter: no ${kind} for layer ${layer}`);
    return { data: await p.tensor.toF32(), shape: [...p.tensor.shape] };
  };
  const tensors: Record<string, TensorToWrite> = {};
  const gpt2 = model.config.modelType === "gpt2";
  const r = lora.r;
  for (let l = 0; l < model.config.nLayers; l++) {
    const [qA, qB, kA, kB] = await Promise.all([get(l, "q_lora_A"), get(l, "q_lora_B"), get(l, "k_lora_A"), get(l, "k_lora_B")]);
    if (!gpt2) {
      const pre = `base_model.model.model.layers.${l}.self_attn`;
      tensors[`${pre}.q_proj.lora_A.weight`] = { dtype: "F32", ...qA };
      tensors[`${pre}.q_proj.lora_B.weight`] = { dtype: "F32", ...qB };
      tensors[`${pre}.k_proj.lora_A.weight`] = { dtype: "F32", ...kA };
      tensors[`${pre}.k_proj.lora_B.weight`] = { dtype: "F32", ...kB };
      continue;
    }
    const C = model.config.hiddenSize;
    const A = new Float32Array(2 * r * C); // [2r, C]
    A.set(qA.data, 0);
    A.set(kA.data, r * C);
    const B = new Float32Array(3 * C * 2 * r); // [3C, 2r]
    for (let n = 0; n < C; n++) {
      for (let j = 0; j < r; j++) {
        B[n * 2 * r + j] = qB.data[n * r + j];
        B[(C + n) * 2 * r + r + j] = kB.data[n * r + j];
      }
    }
    const pre = `base_model.model.transformer.h.${l}.attn.c_attn`;
    tensors[`${pre}.lora_A.weight`] = { dtype: "F32", shape: [2 * r, C], data: A };
    tensors[`${pre}.lora_B.weight`] = { dtype: "F32", shape: [3 * C, 2 * r], data: B };
  }
  writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    revision: revision ?? null,
    r: gpt2 ? 2 * r : r,
    lora_alpha: gpt2 ? 2 * lora.alpha : lora.alpha,
    lora_dropout: 0.0,
    target_modules: gpt2 ? ["c_attn"] : ["q_proj", "k_proj"],
    fan_in_fan_out: gpt2,
    bias: "none",
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
  };
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
  return dir;
}
