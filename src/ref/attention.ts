// CPU reference for kernels/attention_forward.wgsl and kernels/attention_backward*.wgsl, in float64.
// Causal softmax attention with grouped-query heads (query head h reads kv head h / (NH/NKV)) over
// right-padded sequences: sequence b holds tokens t < lengths[b]. Padded rows give y = 0 and
// probabilities 0; padded tokens never contribute. Layouts as in the kernels:
//   q [B,T,NH,HS], k, v [B,T,NKV,HS], y [B,T,NH,HS], att [B,NH,T,T], attLast [B,NH,T].

export interface AttentionShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HS: number;
  /** score scale, default 1/sqrt(HS) */
  scale?: number;
}

export function attentionScale(d: AttentionShape): number {
  return d.scale ?? 1 / Math.sqrt(d.HS);
}

/** lengths[b] clamped to T, as the kernels read it */
function seqLen(lengths: ArrayLike<number>, b: number, T: number): number {
  return Math.min(lengths[b], T);
}

/**
 * y = softmax(scale * q k^T, causal) v per head; att holds the full probabilities (zeros outside
 * the causal, valid region) and attLast the row lengths[b]-1 of each (b, h) (zeros when empty).
 */
export function attentionForward(
  q: ArrayLike<number>, // [B,T,NH,HS]
  k: ArrayLike<number>, // [B,T,NKV,HS]
  v: ArrayLike<number>, // [B,T,NKV,HS]
  lengths: ArrayLike<number>, // [B]
  d: AttentionShape,
): { y: Float64Array; att: Float64Array; attLast: Float64Array } {
  const { B, T, NH, NKV, HS } = d;
  const G = NH / NKV;
  const scale = attentionScale(d);
  const y = new Float64Array(B * T * NH * HS);
  const att = new Float64Array(B * NH * T * T);
  const attLast = new Float64Array(B * NH * T);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const len = seqLen(lengths, b, T);
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / G);
      for (let t = 0; t < len; t++) {
        const qo = ((b * T + t) * NH + h) * HS;
        let mx = -Infinity;
        for (let c = 0; c <= t; c++) {
          const ko = ((b * T + c) * NKV + kvh) * HS;
          let dot = 0;
          for (let i = 0; i < HS; i++) dot += q[qo + i] * k[ko + i];
          s[c] = dot * scale;
          if (s[c] > mx) mx = s[c];
        }
        let sum = 0;
        for (let c = 0; c <= t; c++) {
          s[c] = Math.exp(s[c] - mx);
          sum += s[c];
        }
        const ao = ((b * NH + h) * T + t) * T;
        for (let c = 0; c <= t; c++) {
          const pr = s[c] / sum;
          att[ao + c] = pr;
          if (t === len - 1) attLast[(b * NH + h) * T + c] = pr;
          const vo = ((b * T + c) * NKV + kvh) * HS;
          for (let i = 0; i < HS; i++) y[qo + i] += pr * v[vo + i];
        }
      }
    }
  }
  return { y, att, attLast };
}

/**
 * attLast [B,NH,T] = att [B,NH,T,T] at row lengths[b]-1 (lengths clamped to T) for every (b, h),
 * zeros when lengths[b] = 0 (kernels/attention_last_row.wgsl). A pure gather: for att from
 * attentionForward it gives that function's attLast. No backward (the gradient on attLast enters
 * attentionBackward as dattLast).
 */
export function attentionLastRow(
  att: ArrayLike<number>, // [B,NH,T,T]
  lengths: ArrayLike<number>, // [B]
  d: Pick<AttentionShape, "B" | "T" | "NH">,
): Float64Array {
  const { B, T, NH } = d;
  const attLast = new Float64Array(B * NH * T);
  for (let b = 0; b < B; b++) {
    const len = seqLen(lengths, b, T);
    if (len === 0) continue;
    for (let h = 0; h < NH; h++) {
      const src = ((b * NH + h) * T + len - 1) * T;
      for (let j = 0; j < T; j++) attLast[(b * NH + h) * T + j] = att[src + j];
    }
  }
  return attLast;
}

/**
 * Gradients of L(y, attLast) given dy = dL/dy and (optionally) dattLast = dL/dattLast, using the
 * saved probabilities att:
 *   dP[t,c] = dy[t] . v[c]  (+ dattLast[c] on the row t = lengths[b]-1)
 *   dS[t,c] = P[t,c] (dP[t,c] - sum_c' P[t,c'] dP[t,c'])
 *   dq[t] = scale sum_c dS[t,c] k[c];  dk[c] = scale sum_{h in group, t} dS[t,c] q[t];
 *   dv[c] = sum_{h in group, t} P[t,c] dy[t].
 * Padded positions get 0.
 */
export function attentionBackward(
  dy: ArrayLike<number>, // [B,T,NH,HS]
  att: ArrayLike<number>, // [B,NH,T,T]
  q: ArrayLike<number>, // [B,T,NH,HS]
  k: ArrayLike<number>, // [B,T,NKV,HS]
  v: ArrayLike<number>, // [B,T,NKV,HS]
  lengths: ArrayLike<number>, // [B]
  d: AttentionShape,
  dattLast?: ArrayLike<number>, // [B,NH,T]
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, NH, NKV, HS } = d;
  const G = NH / NKV;
  const scale = attentionScale(d);
  const dq = new Float64Array(B * T * NH * HS);
  const dk = new Float64Array(B * T * NKV * HS);
  const dv = new Float64Array(B * T * NKV * HS);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const len = seqLen(lengths, b, T);
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / G);
      for (let t = 0; t < len; t++) {
        const qo = ((b * T + t) * NH + h) * HS;
        const ao = ((b * NH + h) * T + t) * T;
        let dsum = 0;
        for (let c = 0; c <= t; c++) {
          const vo = ((b * T + c) * NKV + kvh) * HS;
          let g = 0;
          for (let i = 0; i < HS; i++) g += dy[qo + i] * v[vo + i];
          if (dattLast && t === len - 1) g += dattLast[(b * NH + h) * T + c];
          dp[c] = g;
          dsum += att[ao + c] * g;
        }
        for (let c = 0; c <= t; c++) {
          const pr = att[ao + c];
          const ds = pr * (dp[c] - dsum);
          const ko = ((b * T + c) * NKV + kvh) * HS;
          for (let i = 0; i < HS; i++) {
            dq[qo + i] += scale * ds * k[ko + i];
            dk[ko + i] += scale * ds * q[qo + i];
            dv[ko + i] += pr * dy[qo + i];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
