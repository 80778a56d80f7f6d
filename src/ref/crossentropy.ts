// CPU reference for kernels/crossentropy_forward.wgsl and kernels/crossentropy_backward.wgsl, in
// float64. logits [R, V] row-major, targets [R].

export interface CrossentropyRef {
  /** [R] logsumexp(logits[r]) − logits[r, target[r]] */
  loss: Float64Array;
  /** [R] logsumexp(logits[r]) */
  lse: Float64Array;
  /** [R, V] softmax rows */
  probs: Float64Array;
  /** [R, V] log-softmax rows */
  logprobs: Float64Array;
}

export function crossentropyForward(logits: ArrayLike<number>, targets: ArrayLike<number>, R: number, V: number): CrossentropyRef {
  const loss = new Float64Array(R), lse = new Float64Array(R);
  const probs = new Float64Array(R * V), logprobs = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - m);
    lse[r] = m + Math.log(s);
    loss[r] = lse[r] - logits[r * V + targets[r]];
    for (let v = 0; v < V; v++) {
      logprobs[r * V + v] = logits[r * V + v] - lse[r];
      probs[r * V + v] = Math.exp(logprobs[r * V + v]);
    }
  }
  return { loss, lse, probs, logprobs };
}

/** dlogits[r, v] = dloss[r] · (softmax(logits[r])_v − [v == target[r]]) */
export function crossentropyBackward(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dloss: ArrayLike<number>,
  R: number,
  V: number,
): Float64Array {
  const { probs } = crossentropyForward(logits, targets, R, V);
  const dlogits = new Float64Array(R * V);
  for (let r = 0; r < R; r++) {
    for (let v = 0; v < V; v++) {
      dlogits[r * V + v] = dloss[r] * (probs[r * V + v] - (v === targets[r] ? 1 : 0));
    }
  }
  return dlogits;
}
