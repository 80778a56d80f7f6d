// `abft export`: a run directory (base model + trained W_Q/W_K) as a complete Hugging Face model
// folder that transformers loads as is: the base folder's config and tokenizer files copied, and
// its safetensors rewritten shard by shard with the trained tensors merged in (GPT-2: into the Q
// and K column blocks of the fused c_attn). Trained tensors are written in f32 even when the base
// is bf16/f16: ABFT's updates are smaller than a bf16 ulp of most weights, so rounding would undo them.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { ModelConfig } from "../io/config.ts";
import { bf16ToF32, Checkpoint, f16ToF32 } from "../io/safetensors.ts";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors_writer.ts";
import { AbftError } from "../gpu/errors.ts";

/** The LoRA scale alpha/r of a run's trained tensors (0 when it trained the matrices themselves). */
export function loraScale(trained: Checkpoint): number {
  return trained.has("layers.0.q_lora_A") ? Number(trained.metadata.lora_alpha) / trained.info("layers.0.q_lora_A").shape[0] : 0;
}

/** W += scale · B·A in place for layer l's W_Q or W_K (W [N, K], A [r, K], B [N, r] of a LoRA run). */
export function addLoraUpdate(W: Float32Array, trained: Checkpoint, l: number, which: "q" | "k", scale: number): Float32Array {
  const A = trained.getF32(`layers.${l}.${which}_lora_A`), B = trained.getF32(`layers.${l}.${which}_lora_B`);
  const rank = trained.info(`layers.${l}.${which}_lora_A`).shape[0];
  const K = A.length / rank, N = B.length / rank;
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < rank; j++) {
      const b = scale * B[n * rank + j];
      if (b !== 0) for (let k = 0; k < K; k++) W[n * K + k] += b * A[j * K + k];
    }
  }
  return W;
}

/** base tensor name → a function that merges the trained tensors into it */
type Merge = (base: Float32Array, shape: number[]) => Float32Array;

function asF32(t: { dtype: string; data: Float32Array | Uint16Array }): Float32Array {
  if (t.dtype === "F32") return Float32Array.from(t.data as Float32Array);
  return t.dtype === "BF16" ? bf16ToF32(t.data as Uint16Array) : f16ToF32(t.data as Uint16Array);
}

/** Which base tensors change, and how, for this family. */
function merges(config: ModelConfig, trained: Checkpoint, base: Checkpoint): Map<string, Merge> {
  const out = new Map<string, Merge>();
  const get = (n: string) => (trained.has(n) ? trained.getF32(n) : null);
  const scale = loraScale(trained);
  const lora = scale !== 0;
  const baseQK = (l: number, which: "q" | "k"): Float32Array => {
    if (config.modelType !== "gpt2") return asF32(base.get(`model.layers.${l}.self_attn.${which}_proj.weight`));
    const prefix = base.has("transformer.wte.weight") ? "transformer." : "";
    const C = config.hiddenSize;
    const w = asF32(base.get(`${prefix}h.${l}.attn.c_attn.weight`)); // [C_in, 3C]
    const block = which === "q" ? 0 : 1;
    const out = new Float32Array(C * C);
    for (let i = 0; i < C; i++) for (let o = 0; o < C; o++) out[o * C + i] = w[i * 3 * C + block * C + o];
    return out;
  };
  const merged = (l: number, which: "q" | "k"): Float32Array => addLoraUpdate(baseQK(l, which), trained, l, which, scale);
  for (let l = 0; l < config.nLayers; l++) {
    const q = lora ? merged(l, "q") : get(`layers.${l}.q`), k = lora ? merged(l, "k") : get(`layers.${l}.k`);
    const qb = get(`layers.${l}.q_bias`), kb = get(`layers.${l}.k_bias`);
    if (!q || !k) throw new AbftError(`the trained tensors have no W_Q/W_K for layer ${l}`, "BAD_RUN_DIR");
    if (config.modelType === "gpt2") {
      const prefix = base.has("transformer.wte.weight") ? "transformer." : "";
      const C = config.hiddenSize;
      // c_attn.weight is Conv1D [C_in, 3C]; ours are nn.Linear [C_out, C_in]
      out.set(`${prefix}h.${l}.attn.c_attn.weight`, (w) => {
        for (let i = 0; i < C; i++) {
          for (let o = 0; o < C; o++) {
            w[i * 3 * C + o] = q[o * C + i];
            w[i * 3 * C + C + o] = k[o * C + i];
          }
        }
        return w;
      });
      if (qb && kb) {
        out.set(`${prefix}h.${l}.attn.c_attn.bias`, (b) => {
          b.set(qb, 0);
          b.set(kb, C);
          return b;
        });
      }
    } else {
      const a = `model.layers.${l}.self_attn.`;
      out.set(`${a}q_proj.weight`, () => q);
      out.set(`${a}k_proj.weight`, () => k);
      if (qb) out.set(`${a}q_proj.bias`, () => qb);
      if (kb) out.set(`${a}k_proj.bias`, () => kb);
    }
  }
  return out;
}

/** Writes the merged model into outDir; returns the files written. */
export function exportMerged(baseDir: string, config: ModelConfig, trainedFile: string, outDir: string, meta: Record<string, string>): string[] {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new AbftError(`--out ${outDir} exists and is not empty`, "BAD_ARGS");
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const f of readdirSync(baseDir)) {
    const p = join(baseDir, f);
    if (f.endsWith(".safetensors") || f === "model.safetensors.index.json" || !statSync(p).isFile()) continue;
    if (/\.(bin|pth|pt|msgpack|h5|ckpt)$/.test(f)) continue;
    copyFileSync(p, join(outDir, f));
    written.push(f);
  }
  const base = Checkpoint.open(baseDir);
  const trained = Checkpoint.open(trainedFile);
  const todo = merges(config, trained, base);
  const files = new Map<string, string[]>(); // shard file → tensor names
  for (const n of base.names()) {
    const file = basename(base.info(n).file);
    files.set(file, [...(files.get(file) ?? []), n]);
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [file, names] of files) {
    const tensors: Record<string, TensorToWrite> = {};
    for (const n of names) {
      const t = base.get(n);
      const merge = todo.get(n);
      if (merge) {
        // merged when the writer reaches it: one f32 tensor in memory at a time
        tensors[n] = { dtype: "F32", shape: t.shape, data: () => merge(asF32(t), t.shape) };
        todo.delete(n);
      } else tensors[n] = { dtype: t.dtype, shape: t.shape, data: t.data };
      totalSize += t.shape.reduce((a, b) => a * b, 1) * (merge ? 4 : t.data.BYTES_PER_ELEMENT);
      weightMap[n] = file;
    }
    writeSafetensors(join(outDir, file), tensors, { format: "pt", ...meta });
    written.push(file);
  }
  if (todo.size) throw new AbftError(`the base checkpoint lacks ${[...todo.keys()].join(", ")}`, "BAD_RUN_DIR");
  if (files.size > 1) {
    writeFileSync(join(outDir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + "\n");
    written.push("model.safetensors.index.json");
  }
  base.close();
  trained.close();
  return written;
}
