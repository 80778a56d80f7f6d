// Differentiable tensor ops: each runs its forward kernels (src/ops) and, when an input requires a
// gradient, records its backward rule on the tape (src/tensor/autodiff.ts). Every rule lists what
// it saves. Shapes use B,T,C,NH,NKV,HS; rows are tokens (N = B·T).
// Gradient buffers made here are written (=) by the kernels; accumulation across consumers is the
// tape's job. Parameter gradients (dW) start from zero and accumulate inside the kernel.
import type { GpuBuffer } from "../gpu/runtime.ts";
import { abftLossBackward, abftLossForward, type AbftCoefs } from "../ops/abft_loss.ts";
import { geluBackward, geluForward, swigluBackward, swigluForward } from "../ops/activations.ts";
import { attentionBackward, attentionForward, attentionLastRow, type AttentionDims } from "../ops/attention.ts";
import { scaleInto } from "../ops/axpy.ts";
import { crossentropyBackward, crossentropyForward } from "../ops/crossentropy.ts";
import { matmulBackwardInput, matmulBackwardWeight, matmulForward, matmulWeightGradScratchBytes, matmulWeightGradSplits, type WeightDtype } from "../ops/matmul.ts";
import { embeddingForward } from "../ops/embedding.ts";
import { lmHeadBackward, lmHeadBackwardScratchBytes, lmHeadBackwardSplits, lmHeadForward } from "../ops/lm_head.ts";
import { rotaryBackward, rotaryForward, type RotaryDims } from "../ops/rotary.ts";
import { layernormBackward, layernormForward, rmsnormBackward, rmsnormForward } from "../ops/norms.ts";
import { residualForward } from "../ops/residual.ts";
import { record, recording, type Grad } from "./autodiff.ts";
import { empty, untracked, type Tensor } from "./tensor.ts";

function rows(x: Tensor): { N: number; C: number } {
  const C = x.shape[x.shape.length - 1];
  return { N: x.size / C, C };
}

function tensorGrad(g: Grad | null, op: string): Tensor | null {
  if (typeof g === "number") throw new Error(`${op}: a scalar seed only applies to loss ops`);
  return g;
}

/**
 * A tensor an op keeps only for its backward: not owned by any scope; the op hands it to the
 * tape (which retains it) and drops its own reference right after recording.
 */
function temp(rt: Tensor["rt"], shape: number[], name: string): Tensor {
  return untracked(() => empty(rt, shape, "f32", name));
}

function copyOf(t: Tensor): Tensor {
  const c = empty(t.rt, t.shape, "f32", `${t.name}-copy`);
  scaleInto(t.rt, c.buf, t.buf, 1, t.size);
  return c;
}

/** out = a + b (same shapes) */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = empty(a.rt, a.shape, "f32", "add");
  residualForward(a.rt, out.buf, a.buf, b.buf, a.size);
  record("add", [a, b], [out], [], ([g], needs) => {
    const dout = tensorGrad(g, "add")!;
    return [needs[0] ? copyOf(dout) : null, needs[1] ? copyOf(dout) : null];
  });
  return out;
}

/** out [.., N] = x [.., K] · Wᵀ (+ bias), W [N, K] stored as f32/bf16/f16 (frozen unless f32). */
export function linear(x: Tensor, W: Tensor, bias?: Tensor): Tensor {
  const { N: M, C: K } = rows(x);
  const N = W.shape[0];
  if (W.shape[1] !== K) throw new Error(`linear: x ${x.describe()} does not match W ${W.describe()}`);
  const dtype = W.dtype as WeightDtype;
  const out = empty(x.rt, [...x.shape.slice(0, -1), N], "f32", `${W.name}-out`);
  matmulForward(x.rt, { out: out.buf, inp: x.buf, weight: W.buf, bias: bias?.buf }, { M, N, K, dtype });
  const inputs = bias ? [x, W, bias] : [x, W];
  if (recording(inputs)) {
    const saved = [W.requiresGrad || bias?.requiresGrad ? x : null, x.requiresGrad ? W : null].filter((t): t is Tensor => !!t);
    record("linear", inputs, [out], saved, ([g], needs) => {
      const dout = tensorGrad(g, "linear")!;
      const rt = dout.rt;
      const dx = needs[0] ? empty(rt, x.shape, "f32", "dx") : null;
      if (dx) matmulBackwardInput(rt, { dinp: dx.buf, dout: dout.buf, weight: W.buf }, { M, N, K, dtype });
      let dW: Tensor | null = null;
      let db: Tensor | null = null;
      if (needs[1] || needs[2]) {
        if (dtype !== "f32") throw new Error(`linear: ${W.describe()} is stored as ${dtype}; trained weights must be f32`);
        dW = empty(rt, W.shape, "f32", `d${W.name}`);
        rt.clear(dW.buf, dW.byteLength);
        if (needs[2]) {
          db = empty(rt, bias!.shape, "f32", `d${bias!.name}`);
          rt.clear(db.buf, db.byteLength);
        }
        const splits = matmulWeightGradSplits({ M, N, K });
        const scratchBytes = matmulWeightGradScratchBytes({ M, N, K, splits });
        const scratch = scratchBytes > 0 ? rt.pool.acquire(scratchBytes, "dW scratch") : undefined;
        matmulBackwardWeight(rt, { dweight: dW.buf, dout: dout.buf, inp: x.buf, dbias: db?.buf, scratch }, { M, N, K, splits });
        if (scratch) rt.pool.release(scratch);
        if (!needs[1]) {
          dW.dispose();
          dW = null;
        }
      }
      return [dx, dW, db];
    });
  }
  return out;
}

/** GPT-2 LayerNorm over the last dimension (weight and bias frozen). */
export function layernorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const { N, C } = rows(x);
  const rt = x.rt;
  const out = empty(rt, x.shape, "f32", "ln");
  if (!recording([x])) {
    layernormForward(rt, { out: out.buf, inp: x.buf, weight: weight.buf, bias: bias.buf }, { N, C, eps });
    return out;
  }
  const mean = temp(rt, [N], "ln-mean");
  const rstd = temp(rt, [N], "ln-rstd");
  layernormForward(rt, { out: out.buf, inp: x.buf, weight: weight.buf, bias: bias.buf, mean: mean.buf, rstd: rstd.buf }, { N, C, eps });
  record("layernorm", [x], [out], [x, mean, rstd], ([g]) => {
    const dout = tensorGrad(g, "layernorm")!;
    const dx = empty(rt, x.shape, "f32", "dln");
    layernormBackward(rt, { dinp: dx.buf, dout: dout.buf, inp: x.buf, weight: weight.buf, mean: mean.buf, rstd: rstd.buf }, { N, C });
    return [dx];
  });
  mean.dispose();
  rstd.dispose();
  return out;
}

/** Llama/Qwen2 RMSNorm over the last dimension (weight frozen). */
export function rmsnorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const { N, C } = rows(x);
  const rt = x.rt;
  const out = empty(rt, x.shape, "f32", "rms");
  if (!recording([x])) {
    rmsnormForward(rt, { out: out.buf, inp: x.buf, weight: weight.buf }, { N, C, eps });
    return out;
  }
  const rstd = temp(rt, [N], "rms-rstd");
  rmsnormForward(rt, { out: out.buf, inp: x.buf, weight: weight.buf, rstd: rstd.buf }, { N, C, eps });
  record("rmsnorm", [x], [out], [x, rstd], ([g]) => {
    const dout = tensorGrad(g, "rmsnorm")!;
    const dx = empty(rt, x.shape, "f32", "drms");
    rmsnormBackward(rt, { dinp: dx.buf, dout: dout.buf, inp: x.buf, weight: weight.buf, rstd: rstd.buf }, { N, C });
    return [dx];
  });
  rstd.dispose();
  return out;
}

/** GPT-2's gelu_new (tanh form), elementwise. */
export function gelu(x: Tensor): Tensor {
  const out = empty(x.rt, x.shape, "f32", "gelu");
  geluForward(x.rt, { out: out.buf, inp: x.buf }, { N: x.size });
  record("gelu", [x], [out], [x], ([g]) => {
    const dout = tensorGrad(g, "gelu")!;
    const dx = empty(x.rt, x.shape, "f32", "dgelu");
    geluBackward(x.rt, { dinp: dx.buf, inp: x.buf, dout: dout.buf }, { N: x.size });
    return [dx];
  });
  return out;
}

/** silu(gate) · up, elementwise (Llama MLP). */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const rt = gate.rt;
  const out = empty(rt, gate.shape, "f32", "swiglu");
  swigluForward(rt, { out: out.buf, gate: gate.buf, up: up.buf }, { N: gate.size });
  record("swiglu", [gate, up], [out], [gate, up], ([g]) => {
    const dout = tensorGrad(g, "swiglu")!;
    const dgate = empty(rt, gate.shape, "f32", "dgate");
    const dup = empty(rt, up.shape, "f32", "dup");
    swigluBackward(rt, { dgate: dgate.buf, dup: dup.buf, gate: gate.buf, up: up.buf, dout: dout.buf }, { N: gate.size });
    return [dgate, dup];
  });
  return out;
}

/**
 * Causal attention: q [B,T,NH,HS], k, v [B,T,NKV,HS], lengths [B] (u32) → y [B,T,NH,HS] and, with
 * `lastRow`, attLast [B,NH,T]: the probabilities of each sequence's last token. When recording,
 * the full probability matrix [B,NH,T,T] is kept for the backward, which also takes a gradient
 * on attLast (the ABFT loss).
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lengths: Tensor,
  d: AttentionDims,
  lastRow: boolean,
): { y: Tensor; attLast: Tensor | null } {
  const rt = q.rt;
  const { B, T, NH } = d;
  const y = empty(rt, q.shape, "f32", "attn-y");
  const attLast = lastRow ? empty(rt, [B, NH, T], "f32", "attLast") : null;
  if (!recording([q, k, v])) {
    attentionForward(rt, y.buf, q.buf, k.buf, v.buf, lengths.buf, d, attLast ? { mode: "last", attLast: attLast.buf } : undefined);
    return { y, attLast };
  }
  const att = temp(rt, [B, NH, T, T], "att");
  attentionForward(rt, y.buf, q.buf, k.buf, v.buf, lengths.buf, d, { mode: "full", att: att.buf });
  if (attLast) attentionLastRow(rt, attLast.buf, att.buf, lengths.buf, d); // the rows "last" mode would write, bit for bit
  const outputs = attLast ? [y, attLast] : [y];
  record("attention", [q, k, v], outputs, [q, k, v, lengths, att], ([gy, gLast]) => {
    let dy = tensorGrad(gy, "attention");
    const dLast = tensorGrad(gLast ?? null, "attention");
    let zeroDy: Tensor | null = null;
    if (!dy) {
      zeroDy = empty(rt, y.shape, "f32", "dy0");
      rt.clear(zeroDy.buf, zeroDy.byteLength);
      dy = zeroDy;
    }
    const dq = empty(rt, q.shape, "f32", "dq");
    const dk = empty(rt, k.shape, "f32", "dk");
    const dv = empty(rt, v.shape, "f32", "dv");
    const dscores = rt.pool.acquire(B * NH * T * T * 4, "dscores");
    attentionBackward(rt, { dq: dq.buf, dk: dk.buf, dv: dv.buf }, dy.buf, att.buf, q.buf, k.buf, v.buf, lengths.buf, dscores, d, dLast?.buf);
    rt.pool.release(dscores);
    zeroDy?.dispose();
    return [dq, dk, dv];
  });
  att.dispose(); // the tape holds it now
  return { y, attLast };
}

/** A throw-away y for an attention pass run only for its probabilities: pooled and released at once. */
function scratchY(rt: Tensor["rt"], y: Tensor): GpuBuffer {
  const b = rt.pool.acquire(y.byteLength, "attn-y-scratch");
  rt.pool.release(b); // reused only by dispatches recorded later, which run after this one
  return b;
}

/** The full probability matrix att [B,NH,T,T] of causal attention (inspection; never recorded). */
export function attentionProbs(q: Tensor, k: Tensor, v: Tensor, lengths: Tensor, d: AttentionDims): Tensor {
  const rt = q.rt;
  const att = empty(rt, [d.B, d.NH, d.T, d.T], "f32", "att-full");
  attentionForward(rt, scratchY(rt, q), q.buf, k.buf, v.buf, lengths.buf, d, { mode: "full", att: att.buf });
  return att;
}

/**
 * Cross-entropy of logits [R, V] against targets [R] (u32): loss [R]. Backward only from a scalar
 * seed s (the gradient of s · Σ loss).
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const [R, V] = logits.shape;
  const rt = logits.rt;
  const loss = empty(rt, [R], "f32", "ce-loss");
  const lse = temp(rt, [R], "ce-lse");
  crossentropyForward(rt, { logits: logits.buf, targets: targets.buf, loss: loss.buf, lse: lse.buf }, R, V);
  record("crossentropy", [logits], [loss], [logits, targets, lse], ([g]) => {
    if (typeof g !== "number") throw new Error("crossEntropy: backward needs a scalar seed");
    const dloss = empty(rt, [R], "f32", "dloss");
    rt.write(dloss.buf, new Float32Array(R).fill(g));
    const dlogits = empty(rt, logits.shape, "f32", "dlogits");
    crossentropyBackward(rt, { dlogits: dlogits.buf, dloss: dloss.buf, logits: logits.buf, targets: targets.buf, lse: lse.buf }, R, V);
    dloss.dispose();
    return [dlogits];
  });
  lse.dispose();
  return loss;
}

export interface AbftLossInputs {
  /** u32 [B, K] label-token positions */
  labelPos: Tensor;
  /** u32 [B, K] 1 = the demonstration's label is the query's */
  correct: Tensor;
  /** f32 [B] induction-head threshold per prompt */
  threshold: Tensor;
  K: number;
}

/**
 * The ABFT loss of one layer from its last-row attention attLast [B,NH,T]: per (prompt, head) loss,
 * head mask (S > threshold, or all heads without the filter) and S. Backward from a scalar seed s
 * gives d(s · Σ loss)/d attLast with the masks held fixed.
 */
export function abftLoss(
  attLast: Tensor,
  inp: AbftLossInputs,
  coefs: AbftCoefs & { filter: boolean },
): { loss: Tensor; mask: Tensor; S: Tensor } {
  const rt = attLast.rt;
  const [B, NH, T] = attLast.shape;
  const dims = { B, NH, T, K: inp.K };
  const loss = empty(rt, [B, NH], "f32", "abft-loss");
  const mask = empty(rt, [B, NH], "f32", "abft-mask");
  const S = empty(rt, [B, NH], "f32", "abft-S");
  abftLossForward(
    rt,
    { att: attLast.buf, labelPos: inp.labelPos.buf, correct: inp.correct.buf, threshold: inp.threshold.buf, loss: loss.buf, mask: mask.buf, S: S.buf },
    dims,
    coefs,
  );
  record("abft_loss", [attLast], [loss], [mask, inp.labelPos, inp.correct], ([g]) => {
    if (typeof g !== "number") throw new Error("abftLoss: backward needs a scalar seed");
    const datt = empty(rt, attLast.shape, "f32", "dattLast");
    abftLossBackward(rt, { datt: datt.buf, labelPos: inp.labelPos.buf, correct: inp.correct.buf, mask: mask.buf }, dims, { ...coefs, scale: g });
    return [datt];
  });
  return { loss, mask, S };
}

/** Token (and, for GPT-2, learned position) embeddings: out [N, C]. Frozen: never recorded. */
export function embedding(ids: Tensor, wte: Tensor, wpe?: { table: Tensor; positions: Tensor }): Tensor {
  const rt = ids.rt;
  const [V, C] = wte.shape;
  const N = ids.size;
  const out = empty(rt, [N, C], "f32", "embed");
  embeddingForward(
    rt,
    { out: out.buf, ids: ids.buf, wte: wte.buf, wpe: wpe?.table.buf, pos: wpe?.positions.buf },
    { N, C, V, P: wpe?.table.shape[0], dtype: wte.dtype as WeightDtype },
  );
  return out;
}

/** Rotary position embedding of x [B,T,NH,HS] at positions [B,T] with inv_freq [HS/2]. */
export function rotary(x: Tensor, positions: Tensor, invFreq: Tensor, d: RotaryDims): Tensor {
  const rt = x.rt;
  const out = empty(rt, x.shape, "f32", "rope");
  rotaryForward(rt, out.buf, x.buf, positions.buf, invFreq.buf, d);
  record("rotary", [x], [out], [positions, invFreq], ([g]) => {
    const dout = tensorGrad(g, "rotary")!;
    const dx = empty(rt, x.shape, "f32", "drope");
    rotaryBackward(rt, dx.buf, dout.buf, positions.buf, invFreq.buf, d);
    return [dx];
  });
  return out;
}

/**
 * LM head on chosen rows of h [M, C] and chosen vocabulary columns (all when `cols` is absent):
 * logits [R, J]. The head weight [V, C] is frozen; the gradient flows into h (E2E training).
 */
export function lmHead(h: Tensor, W: Tensor, rowsIdx: Tensor, cols?: Tensor): Tensor {
  const rt = h.rt;
  const { N: M, C } = rows(h);
  const V = W.shape[0];
  const R = rowsIdx.size;
  const J = cols ? cols.size : V;
  const dtype = W.dtype as WeightDtype;
  const logits = empty(rt, [R, J], "f32", "logits");
  lmHeadForward(rt, { logits: logits.buf, h: h.buf, weight: W.buf, rows: rowsIdx.buf, cols: cols?.buf }, { R, J, C, M, V, dtype });
  record("lm_head", [h], [logits], cols ? [rowsIdx, cols] : [rowsIdx], ([g]) => {
    const dlogits = tensorGrad(g, "lm_head")!;
    const dh = empty(rt, h.shape, "f32", "dh");
    rt.clear(dh.buf, dh.byteLength);
    const splits = lmHeadBackwardSplits({ R, J, C });
    const bytes = lmHeadBackwardScratchBytes({ R, C, splits });
    const scratch = bytes > 0 ? rt.pool.acquire(bytes, "lm_head scratch") : undefined;
    lmHeadBackward(rt, { dh: dh.buf, dlogits: dlogits.buf, weight: W.buf, rows: rowsIdx.buf, cols: cols?.buf, scratch }, { R, J, C, M, V, dtype, splits });
    if (scratch) rt.pool.release(scratch);
    return [dh];
  });
  return logits;
}
