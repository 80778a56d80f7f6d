// Rotary position embeddings (HF Llama convention, rotate_half): the inverse frequencies the models
// use (computed here, on the host, in float64 and rounded to f32) and the float64 CPU reference for
// kernels/rotary_forward.wgsl and kernels/rotary_backward.wgsl.
// Layout: x [B,T,NH,HS]; for each token at position pos and each i < HS/2 the pair (x[i], x[i+HS/2])
// rotates by a = pos * invFreq[i], where a is the f32 product (HF computes its freqs in f32 too);
// the reference then takes cos and sin of that f32 angle in float64.

/** HF `rope_scaling` with rope_type "llama3" (Llama 3.1 and later). */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/**
 * invFreq [HS/2]: theta^(-2i/HS), then, with llama3 scaling, the adjustment of HF transformers'
 * `_compute_llama3_parameters`: with wavelen = 2 pi / invFreq[i],
 *   wavelen < original/highFreqFactor  (high frequencies): unchanged;
 *   wavelen > original/lowFreqFactor   (low frequencies):  invFreq / factor;
 *   in between: (1 - s) invFreq / factor + s invFreq, s = (original/wavelen - low) / (high - low).
 * Everything in float64, rounded to f32 at the end (HF rounds the default frequencies to f32 before
 * scaling; the two differ by at most an ulp or two).
 */
export function ropeInvFreq(HS: number, theta: number, scaling?: Llama3RopeScaling): Float32Array {
  if (HS % 2 !== 0) throw new RangeError(`ropeInvFreq: head size ${HS} is odd`);
  const out = new Float32Array(HS / 2);
  for (let i = 0; i < HS / 2; i++) {
    let f = Math.pow(theta, (-2 * i) / HS);
    if (scaling) {
      const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: orig } = scaling;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > orig / low) {
        f = f / factor;
      } else if (!(wavelen < orig / high)) {
        const s = (orig / wavelen - low) / (high - low);
        f = ((1 - s) * f) / factor + s * f;
      }
    }
    out[i] = f;
  }
  return out;
}

/** positions [B,T] with pos = t: what callers upload when tokens sit at 0..T-1. */
export function sequentialPositions(B: number, T: number): Uint32Array {
  const pos = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
  return pos;
}

/** the angle the kernel uses: the f32 product of the f32 position and the f32 frequency */
export function rotaryAngle(pos: number, invFreq: number): number {
  return Math.fround(Math.fround(pos) * Math.fround(invFreq));
}

/** out [B,T,NH,HS] = x rotated pairwise by pos * invFreq[i] */
export function rotaryForward(
  x: ArrayLike<number>, // [B,T,NH,HS]
  positions: ArrayLike<number>, // [B,T]
  invFreq: ArrayLike<number>, // [HS/2]
  B: number,
  T: number,
  NH: number,
  HS: number,
): Float64Array {
  return rotate(x, positions, invFreq, B, T, NH, HS, 1);
}

/** dinp [B,T,NH,HS]: dout rotated back by -pos * invFreq[i] (the transpose of the rotation) */
export function rotaryBackward(
  dout: ArrayLike<number>, // [B,T,NH,HS]
  positions: ArrayLike<number>, // [B,T]
  invFreq: ArrayLike<number>, // [HS/2]
  B: number,
  T: number,
  NH: number,
  HS: number,
): Float64Array {
  return rotate(dout, positions, invFreq, B, T, NH, HS, -1);
}

function rotate(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  B: number,
  T: number,
  NH: number,
  HS: number,
  sign: 1 | -1,
): Float64Array {
  const half = HS / 2;
  const out = new Float64Array(B * T * NH * HS);
  for (let bt = 0; bt < B * T; bt++) {
    for (let i = 0; i < half; i++) {
      const a = rotaryAngle(positions[bt], invFreq[i]);
      const c = Math.cos(a);
      const s = sign * Math.sin(a);
      for (let h = 0; h < NH; h++) {
        const o = (bt * NH + h) * HS + i;
        const x1 = x[o];
        const x2 = x[o + half];
        out[o] = x1 * c - x2 * s;
        out[o + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
