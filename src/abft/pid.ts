// The PID controller on A (../shared/docs/abft-method.md section 4).
//
// n_t = the mean over the pseudo-batch of the number of heads (all layers) passing the filter at
// step t (1-based). From t >= 3 on:
//   A_t = A_{t-1} + Cp (n_t - n_{t-1}) + Ci Σ_{i=2..t} (n_i - n_{i-1}) + Cd (n_t - 2 n_{t-1} + n_{t-2})
// clamped at A >= 0 (decision); the new A applies from the next step. B stays fixed.

export interface PidGains {
  Cp: number;
  Ci: number;
  Cd: number;
}

export const PAPER_GAINS: PidGains = { Cp: 0.03, Ci: 0.005, Cd: 0.005 };

export interface PidState {
  A: number;
  /** n_1 .. n_t so far */
  history: number[];
}

/** Records n_t of the step just finished and returns A for the next step. */
export function pidUpdate(state: PidState, nT: number, gains: PidGains, enabled = true): PidState {
  const history = [...state.history, nT];
  const t = history.length;
  let A = state.A;
  if (enabled && t >= 3) {
    const n = (i: number) => history[i - 1]; // 1-based
    const integral = n(t) - n(1); // Σ_{i=2..t} (n_i − n_{i−1}) telescopes
    A += gains.Cp * (n(t) - n(t - 1)) + gains.Ci * integral + gains.Cd * (n(t) - 2 * n(t - 1) + n(t - 2));
    A = Math.max(0, A);
  }
  return { A, history };
}
