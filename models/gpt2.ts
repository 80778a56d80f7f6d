// GPT-2 (HF transformers `modeling_gpt2.py`, GPT2LMHeadModel), inference and the ABFT backward.
//
//   x = wte[ids] + wpe[pos]
//   for each block:  x = x + c_proj(attn(ln_1(x)));  x = x + mlp(ln_2(x)),  mlp = c_proj(gelu_new(c_fc(.)))
//   hidden = ln_f(x);  logits = hidden · wteᵀ (tied head)
//
// Checkpoint layout: Conv1D weights are [in, out]; we store them transposed as nn.Linear [out, in]
// (transposed on the GPU as they load, models/weights.ts). The fused c_attn [C, 3C] is cut into W_Q,
// W_K, W_V [C, C] (and its bias into three [C]) so that W_Q and W_K are separate tensors: the ones
// ABFT trains, kept in f32. Tensor names may carry the "transformer." prefix (GPT2LMHeadModel) or
// not (the original OpenAI conversions).
import type { ModelConfig } from "../src/io/config.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import { add, attention, attentionProbs, embedding, gelu, layernorm } from "../src/tensor/ops.ts";
import type { LoraAdapter, LoraConfig } from "../src/tensor/lora.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import {
  anyTrained, checkContext, disposeAdapters, runBlocks, type BlockOutput, loraParams, makeQkAdapters, project,
  type Batch, type ForwardOptions, type ForwardResult, type LanguageModel, type QkParam,
} from "./common.ts";
import { checkNoExtraTensors, hostF32, loadMatrix, loadWeight, TransposedCuts, uploadWeight, type LoadOptions, type TensorSource } from "./weights.ts";

interface Gpt2Block {
  ln1: { w: Tensor; b: Tensor };
  q: Tensor; k: Tensor; v: Tensor; // [C, C], nn.Linear layout
  qBias: Tensor; kBias: Tensor; vBias: Tensor; // [C], f32
  proj: Tensor; projBias: Tensor;
  ln2: { w: Tensor; b: Tensor };
  fc: Tensor; fcBias: Tensor; // [4C, C]
  fcProj: Tensor; fcProjBias: Tensor; // [C, 4C]
}

export class Gpt2 implements LanguageModel {
  private adapters: { q: LoraAdapter; k: LoraAdapter }[] | null = null;
  private lora: LoraConfig | null = null;

  private constructor(
    readonly config: ModelConfig,
    private readonly wte: Tensor, // [V, C]
    private readonly wpe: Tensor, // [P, C]
    private readonly blocks: Gpt2Block[],
    private readonly lnF: { w: Tensor; b: Tensor },
  ) {}

  static load(rt: Runtime, config: ModelConfig, ckpt: TensorSource, opts: LoadOptions = {}): Gpt2 {
    const prefix = ckpt.has("transformer.wte.weight") ? "transformer." : "";
    const used = new Set<string>();
    const C = config.hiddenSize;
    const F = config.intermediateSize;
    const w = (name: string, o: Parameters<typeof loadWeight>[3] = {}) => {
      used.add(prefix + name);
      return loadWeight(rt, ckpt, prefix + name, o);
    };
    // a frozen Conv1D matrix [in, out] kept as nn.Linear [out, in] (transposed on the GPU); quantized
    // when the options ask, or taken as such from opts.quantStore without reading the checkpoint
    const mat = (name: string, shape: [number, number]) => {
      used.add(prefix + name);
      return loadMatrix(opts, prefix + name, shape, () => loadWeight(rt, ckpt, prefix + name, { transpose: true, expectShape: [shape[1], shape[0]] }));
    };
    const f32 = (name: string) => w(name, { f32: true });
    const blocks: Gpt2Block[] = [];
    for (let l = 0; l < config.nLayers; l++) {
      const h = `h.${l}.`;
      // c_attn: [C, 3C] Conv1D; its column blocks transposed are W_Q, W_K, W_V [C, C] (Q and K in
      // f32, V as stored). Read and uploaded once, and only if some block does not come from the store.
      used.add(prefix + h + "attn.c_attn.weight");
      const cAttn = new TransposedCuts(rt, ckpt, prefix + h + "attn.c_attn.weight", [C, 3 * C]);
      const cut = (i: number, f32: boolean, name: string) => () => cAttn.cut(i * C, C, f32, name);
      let q: Tensor, k: Tensor, v: Tensor;
      try {
        q = loadMatrix(opts, `${h}attn.q`, [C, C], cut(0, true, `${h}attn.q`), true);
        k = loadMatrix(opts, `${h}attn.k`, [C, C], cut(1, true, `${h}attn.k`), true);
        v = loadMatrix(opts, `${h}attn.v`, [C, C], cut(2, false, `${h}attn.v`));
      } finally {
        cAttn.release();
      }
      used.add(prefix + h + "attn.c_attn.bias");
      const bias = hostF32(ckpt, prefix + h + "attn.c_attn.bias"); // [3C]
      blocks.push({
        ln1: { w: f32(h + "ln_1.weight"), b: f32(h + "ln_1.bias") },
        q, k, v,
        qBias: uploadWeight(rt, bias.slice(0, C), [C], `${h}attn.q_bias`),
        kBias: uploadWeight(rt, bias.slice(C, 2 * C), [C], `${h}attn.k_bias`),
        vBias: uploadWeight(rt, bias.slice(2 * C, 3 * C), [C], `${h}attn.v_bias`),
        proj: mat(h + "attn.c_proj.weight", [C, C]),
        projBias: f32(h + "attn.c_proj.bias"),
        ln2: { w: f32(h + "ln_2.weight"), b: f32(h + "ln_2.bias") },
        fc: mat(h + "mlp.c_fc.weight", [F, C]),
        fcBias: f32(h + "mlp.c_fc.bias"),
        fcProj: mat(h + "mlp.c_proj.weight", [C, F]),
        fcProjBias: f32(h + "mlp.c_proj.bias"),
      });
    }
    const wte = w("wte.weight", { expectShape: [config.vocabSize, C] });
    const wpe = w("wpe.weight");
    const lnF = { w: f32("ln_f.weight"), b: f32("ln_f.bias") };
    if (ckpt.has("lm_head.weight")) used.add("lm_head.weight"); // tied: the same values as wte
    checkNoExtraTensors(ckpt, used, "gpt2");
    return new Gpt2(config, wte, wpe, blocks, lnF);
  }

  forward(batch: Batch, opts: ForwardOptions = {}): ForwardResult {
    const { B, T } = batch;
    const C = this.config.hiddenSize;
    const NH = this.config.nHeads;
    const HS = C / NH;
    const eps = this.config.normEps;
    const res: ForwardResult = { hidden: null as unknown as Tensor, attLast: [], attFull: [], hiddenStates: [] };
    checkContext(batch, this.config);
    let x = embedding(batch.ids, this.wte, { table: this.wpe, positions: batch.positions }); // [B*T, C]
    if (opts.hiddenStates) res.hiddenStates.push(x.retain());
    const dims = { B, T, NH, NKV: NH, HS };
    const block = (l: number, xin: Tensor): BlockOutput => {
      const blk = this.blocks[l];
      const ad = this.adapters?.[l];
      const h = layernorm(xin, blk.ln1.w, blk.ln1.b, eps);
      const q = project(h, blk.q, blk.qBias, ad?.q); // [B*T, C] = [B, T, NH, HS]
      const k = project(h, blk.k, blk.kBias, ad?.k);
      const v = project(h, blk.v, blk.vBias);
      const { y, attLast } = attention(q, k, v, batch.lengthsT, dims, !!opts.attLast);
      const attFull = opts.attFull ? attentionProbs(q, k, v, batch.lengthsT, dims) : null;
      const x1 = add(xin, project(y, blk.proj, blk.projBias));
      const m = project(gelu(project(layernorm(x1, blk.ln2.w, blk.ln2.b, eps), blk.fc, blk.fcBias)), blk.fcProj, blk.fcProjBias);
      return { x: add(x1, m), attLast, attFull };
    };
    const trains = (l: number) => {
      const [b, ad] = [this.blocks[l], this.adapters?.[l]];
      return anyTrained(b.q, b.k, b.qBias, b.kBias, ad?.q.A, ad?.q.B, ad?.k.A, ad?.k.B);
    };
    x = runBlocks(x, this.blocks.length, opts, res, block, trains);
    res.hidden = layernorm(x, this.lnF.w, this.lnF.b, eps);
    x.free();
    if (opts.hiddenStates) res.hiddenStates.push(res.hidden.retain());
    return res;
  }

  headWeight(): Tensor {
    return this.wte;
  }

  qkParams(withBias = false): QkParam[] {
    return this.blocks.flatMap((b, layer) => {
      const out: QkParam[] = [
        { layer, kind: "q", name: `h.${layer}.attn.c_attn.weight`, tensor: b.q },
        { layer, kind: "k", name: `h.${layer}.attn.c_attn.weight`, tensor: b.k },
      ];
      if (withBias) {
        out.push({ layer, kind: "q_bias", name: `h.${layer}.attn.c_attn.bias`, tensor: b.qBias });
        out.push({ layer, kind: "k_bias", name: `h.${layer}.attn.c_attn.bias`, tensor: b.kBias });
      }
      return out;
    });
  }

  attachLora(cfg: LoraConfig, seed: number): QkParam[] {
    if (!this.adapters) {
      this.adapters = makeQkAdapters(this.wte.rt, this.blocks, cfg, seed, (l, which) => `h.${l}.attn.${which}`);
      this.lora = cfg;
    }
    return loraParams(this.adapters, (l) => `h.${l}.attn.c_attn`);
  }

  loraConfig(): LoraConfig | null {
    return this.lora;
  }

  dispose(): void {
    disposeAdapters(this.adapters);
    for (const b of this.blocks) {
      for (const t of [b.ln1.w, b.ln1.b, b.q, b.k, b.v, b.qBias, b.kBias, b.vBias, b.proj, b.projBias, b.ln2.w, b.ln2.b, b.fc, b.fcBias, b.fcProj, b.fcProjBias]) t.dispose();
    }
    for (const t of [this.wte, this.wpe, this.lnF.w, this.lnF.b]) t.dispose();
  }
}
