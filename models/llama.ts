// Llama family (HF transformers `modeling_llama.py`, LlamaForCausalLM): Llama 2/3/3.1, Falcon3 (a
// llama checkpoint), and, with q/k/v biases, Qwen2 (models/qwen2.ts).
//
//   x = embed_tokens[ids]
//   for each layer:
//     h = rmsnorm(x);  q, k, v = h·Wqᵀ (+bq), h·Wkᵀ (+bk), h·Wvᵀ (+bv)      q [B,T,NH,HS], k, v [B,T,NKV,HS]
//     q, k = rope(q), rope(k);  x = x + o_proj(attention(q, k, v))       grouped-query attention
//     x = x + down(silu(gate(rmsnorm(x))) · up(rmsnorm(x)))
//   hidden = norm(x);  logits = hidden · lm_headᵀ (or embed_tokensᵀ when tied)
//
// RoPE's inverse frequencies come from config (rope_theta and, for Llama 3.1, the llama3 scaling),
// computed on the host in float64 as HF does. W_Q and W_K are kept in f32 (trained by ABFT); the
// other weights stay in their stored dtype (bf16/f16 are unpacked inside the matmul kernels).
import type { ModelConfig } from "../src/io/config.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import { ropeInvFreq } from "../src/ref/rotary.ts";
import { add, attention, attentionProbs, embedding, rmsnorm, rotary, swiglu } from "../src/tensor/ops.ts";
import type { LoraAdapter, LoraConfig } from "../src/tensor/lora.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import {
  anyTrained, checkContext, disposeAdapters, runBlocks, type BlockOutput, loraParams, makeQkAdapters, project,
  type Batch, type ForwardOptions, type ForwardResult, type LanguageModel, type QkParam,
} from "./common.ts";
import { checkNoExtraTensors, loadMatrix, loadWeight, uploadWeight, type LoadOptions, type TensorSource } from "./weights.ts";

interface LlamaLayer {
  inputNorm: Tensor;
  q: Tensor; k: Tensor; v: Tensor; o: Tensor;
  qBias?: Tensor; kBias?: Tensor; vBias?: Tensor; oBias?: Tensor;
  postNorm: Tensor;
  gate: Tensor; up: Tensor; down: Tensor;
  gateBias?: Tensor; upBias?: Tensor; downBias?: Tensor;
}

export class Llama implements LanguageModel {
  private adapters: { q: LoraAdapter; k: LoraAdapter }[] | null = null;
  private lora: LoraConfig | null = null;

  private constructor(
    readonly config: ModelConfig,
    private readonly embed: Tensor, // [V, C]
    private readonly layers: LlamaLayer[],
    private readonly norm: Tensor,
    private readonly head: Tensor, // [V, C]: lm_head, or embed when tied
    private readonly invFreq: Tensor, // [HS/2]
  ) {}

  static load(rt: Runtime, config: ModelConfig, ckpt: TensorSource, opts: LoadOptions = {}): Llama {
    const used = new Set<string>();
    const C = config.hiddenSize;
    const { nHeads: NH, nKvHeads: NKV, headDim: HS, intermediateSize: F } = config;
    const w = (name: string, o: Parameters<typeof loadWeight>[3] = {}) => {
      used.add(name);
      return loadWeight(rt, ckpt, name, o);
    };
    const opt = (name: string, o: Parameters<typeof loadWeight>[3] = {}) => (ckpt.has(name) ? w(name, o) : undefined);
    // frozen matrices may be quantized (or taken as such from opts.quantStore without reading the
    // checkpoint); W_Q/W_K too when they train through LoRA, else they are widened to f32 (on the GPU)
    const mat = (name: string, shape: number[], qk = false, o: Parameters<typeof loadWeight>[3] = {}) => {
      used.add(name);
      return loadMatrix(opts, name, shape, () => loadWeight(rt, ckpt, name, { ...o, expectShape: shape }), qk);
    };
    const f32 = { f32: true };
    const layers: LlamaLayer[] = [];
    for (let l = 0; l < config.nLayers; l++) {
      const p = `model.layers.${l}.`;
      const a = `${p}self_attn.`;
      const m = `${p}mlp.`;
      const layer: LlamaLayer = {
        inputNorm: w(`${p}input_layernorm.weight`, f32),
        q: mat(`${a}q_proj.weight`, [NH * HS, C], true, { f32: !opts.lora }),
        k: mat(`${a}k_proj.weight`, [NKV * HS, C], true, { f32: !opts.lora }),
        v: mat(`${a}v_proj.weight`, [NKV * HS, C]),
        o: mat(`${a}o_proj.weight`, [C, NH * HS]),
        qBias: opt(`${a}q_proj.bias`, f32),
        kBias: opt(`${a}k_proj.bias`, f32),
        vBias: opt(`${a}v_proj.bias`, f32),
        oBias: opt(`${a}o_proj.bias`, f32),
        postNorm: w(`${p}post_attention_layernorm.weight`, f32),
        gate: mat(`${m}gate_proj.weight`, [F, C]),
        up: mat(`${m}up_proj.weight`, [F, C]),
        down: mat(`${m}down_proj.weight`, [C, F]),
        gateBias: opt(`${m}gate_proj.bias`, f32),
        upBias: opt(`${m}up_proj.bias`, f32),
        downBias: opt(`${m}down_proj.bias`, f32),
      };
      if (config.attentionBias && !(layer.qBias && layer.kBias && layer.vBias)) {
        throw new Error(`${config.modelType} config says the attention has biases, but ${a}q/k/v_proj.bias are missing`);
      }
      layers.push(layer);
    }
    const embed = w("model.embed_tokens.weight", { expectShape: [config.vocabSize, C] });
    const norm = w("model.norm.weight", f32);
    const head = !config.tieWordEmbeddings && ckpt.has("lm_head.weight") ? w("lm_head.weight") : embed;
    if (config.tieWordEmbeddings && ckpt.has("lm_head.weight")) used.add("lm_head.weight");
    checkNoExtraTensors(ckpt, used, config.modelType);
    const s = config.ropeScaling;
    const scaling =
      s && s.type === "llama3"
        ? { factor: s.factor, lowFreqFactor: s.lowFreqFactor, highFreqFactor: s.highFreqFactor, originalMaxPositionEmbeddings: s.originalMaxPositions }
        : undefined;
    const invFreq = uploadWeight(rt, ropeInvFreq(HS, config.ropeTheta, scaling), [HS / 2], "rope.inv_freq");
    return new Llama(config, embed, layers, norm, head, invFreq);
  }

  forward(batch: Batch, opts: ForwardOptions = {}): ForwardResult {
    const { B, T } = batch;
    const { nHeads: NH, nKvHeads: NKV, headDim: HS, normEps: eps } = this.config;
    const res: ForwardResult = { hidden: null as unknown as Tensor, attLast: [], attFull: [], hiddenStates: [] };
    checkContext(batch, this.config);
    let x = embedding(batch.ids, this.embed); // [B*T, C]
    if (opts.hiddenStates) res.hiddenStates.push(x.retain());
    const dims = { B, T, NH, NKV, HS };
    const block = (l: number, xin: Tensor): BlockOutput => {
      const ly = this.layers[l];
      const ad = this.adapters?.[l];
      const h = rmsnorm(xin, ly.inputNorm, eps);
      const q = rotary(project(h, ly.q, ly.qBias, ad?.q), batch.positions, this.invFreq, { B, T, NH, HS });
      const k = rotary(project(h, ly.k, ly.kBias, ad?.k), batch.positions, this.invFreq, { B, T, NH: NKV, HS });
      const v = project(h, ly.v, ly.vBias);
      const { y, attLast } = attention(q, k, v, batch.lengthsT, dims, !!opts.attLast);
      const attFull = opts.attFull ? attentionProbs(q, k, v, batch.lengthsT, dims) : null;
      const x1 = add(xin, project(y, ly.o, ly.oBias));
      const h2 = rmsnorm(x1, ly.postNorm, eps);
      const mlp = project(swiglu(project(h2, ly.gate, ly.gateBias), project(h2, ly.up, ly.upBias)), ly.down, ly.downBias);
      return { x: add(x1, mlp), attLast, attFull };
    };
    const trains = (l: number) => {
      const [ly, ad] = [this.layers[l], this.adapters?.[l]];
      return anyTrained(ly.q, ly.k, ly.qBias, ly.kBias, ad?.q.A, ad?.q.B, ad?.k.A, ad?.k.B);
    };
    x = runBlocks(x, this.layers.length, opts, res, block, trains);
    res.hidden = rmsnorm(x, this.norm, eps);
    x.free();
    if (opts.hiddenStates) res.hiddenStates.push(res.hidden.retain());
    return res;
  }

  headWeight(): Tensor {
    return this.head;
  }

  qkParams(withBias = false): QkParam[] {
    return this.layers.flatMap((ly, layer) => {
      const a = `model.layers.${layer}.self_attn.`;
      const out: QkParam[] = [
        { layer, kind: "q", name: `${a}q_proj.weight`, tensor: ly.q },
        { layer, kind: "k", name: `${a}k_proj.weight`, tensor: ly.k },
      ];
      if (withBias && ly.qBias && ly.kBias) {
        out.push({ layer, kind: "q_bias", name: `${a}q_proj.bias`, tensor: ly.qBias });
        out.push({ layer, kind: "k_bias", name: `${a}k_proj.bias`, tensor: ly.kBias });
      }
      return out;
    });
  }

  attachLora(cfg: LoraConfig, seed: number): QkParam[] {
    if (!this.adapters) {
      this.adapters = makeQkAdapters(this.head.rt, this.layers, cfg, seed, (l, w) => `model.layers.${l}.self_attn.${w}_proj`);
      this.lora = cfg;
    }
    return loraParams(this.adapters, (l) => `model.layers.${l}.self_attn`);
  }

  loraConfig(): LoraConfig | null {
    return this.lora;
  }

  dispose(): void {
    disposeAdapters(this.adapters);
    for (const ly of this.layers) for (const t of Object.values(ly)) (t as Tensor | undefined)?.dispose();
    if (this.head !== this.embed) this.head.dispose();
    for (const t of [this.embed, this.norm, this.invFreq]) t.dispose();
  }
}
