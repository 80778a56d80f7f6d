import { expect, test } from "bun:test";
import { PAPER_GAINS, pidUpdate, type PidState } from "../../src/abft/pid.ts";

test("PID: A moves only from step 3 on, by the formula, and never below 0", () => {
  const g = PAPER_GAINS;
  let s: PidState = { A: 0.5, history: [] };
  const n = [10, 12, 15, 11, 11];
  const As: number[] = [];
  for (const x of n) {
    s = pidUpdate(s, x, g);
    As.push(s.A);
  }
  expect(As[0]).toBe(0.5);
  expect(As[1]).toBe(0.5);
  // t = 3: Cp (15 − 12) + Ci (15 − 10) + Cd (15 − 24 + 10)
  const a3 = 0.5 + 0.03 * 3 + 0.005 * 5 + 0.005 * 1;
  expect(As[2]).toBeCloseTo(a3, 12);
  // t = 4: Cp (11 − 15) + Ci (11 − 10) + Cd (11 − 30 + 12)
  const a4 = a3 + 0.03 * -4 + 0.005 * 1 + 0.005 * -7;
  expect(As[3]).toBeCloseTo(a4, 12);
  // clamp: a sharp drop in heads drives A below zero without the clamp
  let c: PidState = { A: 0.01, history: [] };
  for (const x of [40, 40, 0]) c = pidUpdate(c, x, g);
  expect(c.A).toBe(0);
  // disabled: A never moves
  let d: PidState = { A: 0.5, history: [] };
  for (const x of n) d = pidUpdate(d, x, g, false);
  expect(d.A).toBe(0.5);
  expect(d.history).toEqual(n);
});
