// CPU references for kernels/gelu_*.wgsl and kernels/swiglu_*.wgsl, in float64, elementwise.
// Gradients of the loss sum(out * dout); backward returns the input gradients as if written.

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** GPT-2 gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluForward(inp: ArrayLike<number>): Float64Array {
  const out = new Float64Array(inp.length);
  for (let i = 0; i < inp.length; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_A * x * x * x)));
  }
  return out;
}

/** dinp = dout * gelu'(inp). */
export function geluBackward(inp: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const dinp = new Float64Array(inp.length);
  for (let i = 0; i < inp.length; i++) {
    const x = inp[i];
    const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_A * x * x * x));
    const dt = (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_A * x * x);
    dinp[i] = dout[i] * (0.5 * (1 + t) + 0.5 * x * dt);
  }
  return dinp;
}

function sigmoid(g: number): number {
  return g >= 0 ? 1 / (1 + Math.exp(-g)) : Math.exp(g) / (1 + Math.exp(g));
}

/** Llama MLP gate: out = silu(gate) * up, silu(g) = g * sigmoid(g). gate, up, out (N). */
export function swigluForward(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

/** dgate = dout * up * silu'(gate), dup = dout * silu(gate). */
export function swigluBackward(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  dout: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}
