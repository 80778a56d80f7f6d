// Metrics on constructed cases with hand-computed answers: accuracy, macro-F1, per-class accuracy,
// contextual calibration (StaICC's and Zhao's p_cf), and StaICC-Diag's consistency.
import { describe, expect, test } from "bun:test";
import {
  accuracy,
  argmax,
  calibrate,
  calibratedPredictions,
  classificationReport,
  confusionMatrix,
  contentFreeFromLogits,
  demonstrationConsistency,
  groupConsistency,
  macroF1,
  meanDistribution,
  perClassAccuracy,
  predictionConsistency,
  predictions,
  softmax,
  templateConsistency,
  zhaoContentFree,
} from "../../src/eval/metrics.ts";

const close = (a: ArrayLike<number>, b: number[], eps = 1e-12) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(eps);
};

describe("classification metrics", () => {
  const gold = [0, 0, 0, 1, 1, 2];
  const pred = [0, 0, 1, 1, 2, 2];
  test("accuracy, confusion, per-class accuracy", () => {
    expect(accuracy(pred, gold)).toBe(4 / 6);
    expect(confusionMatrix(pred, gold, 3)).toEqual([[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
    close(perClassAccuracy(pred, gold, 3), [2 / 3, 1 / 2, 1]);
    expect(perClassAccuracy(pred, gold, 4)[3]).toBeNaN();
  });
  test("macro-F1 from precision and recall by hand", () => {
    // class 0: P 2/2, R 2/3; class 1: P 1/2, R 1/2; class 2: P 1/2, R 1/1
    const f1 = (p: number, r: number) => (2 * p * r) / (p + r);
    const want = (f1(1, 2 / 3) + f1(1 / 2, 1 / 2) + f1(1 / 2, 1)) / 3;
    expect(Math.abs(macroF1(pred, gold, 3) - want)).toBeLessThan(1e-12);
    // a class absent from gold and predictions is left out of the mean
    expect(Math.abs(macroF1(pred, gold, 5) - want)).toBeLessThan(1e-12);
    // a class never predicted counts with F1 0
    expect(Math.abs(macroF1([0, 0], [0, 1], 2) - (2 / 3 + 0) / 2)).toBeLessThan(1e-12);
    // a class predicted but absent from gold counts with F1 0
    expect(Math.abs(macroF1([0, 1], [0, 0], 2) - (2 / 3 + 0) / 2)).toBeLessThan(1e-12);
    expect(macroF1(gold, gold, 3)).toBe(1);
  });
  test("report: null for a class with no inputs, counts per class", () => {
    const r = classificationReport(pred, gold, 4, ["a", "b", "c", "d"]);
    expect(r.n).toBe(6);
    expect(r.perClassCount).toEqual([3, 2, 1, 0]);
    expect(r.perClassAccuracy[3]).toBeNull();
    expect(r.labels).toEqual(["a", "b", "c", "d"]);
    expect(JSON.parse(JSON.stringify(r)).perClassAccuracy[3]).toBeNull();
  });
  test("argmax takes the first maximum; NaN and bad sizes are errors", () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(predictions([[0.1, 0.9], [2, 2], [-1, -5]])).toEqual([1, 0, 0]);
    expect(() => argmax([1, NaN])).toThrow(/NaN/);
    expect(() => accuracy([0, 1], [0])).toThrow(/2 predictions for 1 gold labels/);
    expect(() => confusionMatrix([0, 3], [0, 1], 3)).toThrow(/prediction 3 at 1 is outside \[0, 3\)/);
  });
  test("softmax is stable for large logits", () => {
    close(softmax([1000, 1000]), [0.5, 0.5]);
    close(softmax([0, Math.log(3)]), [0.25, 0.75]);
  });
});

describe("contextual calibration", () => {
  const probs = [[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]];
  test("argmax(p / p_cf) changes the predictions the formula says", () => {
    expect(predictions(probs)).toEqual([0, 0, 1]);
    // p_cf leans to label 0: 0.7/0.65 = 1.077 > 0.3/0.35 = 0.857 (stays 0); 0.6/0.65 = 0.923 < 0.4/0.35 = 1.143 (flips to 1)
    expect(calibratedPredictions(probs, [0.65, 0.35])).toEqual([0, 1, 1]);
    const q = calibrate([0.6, 0.4], [0.65, 0.35]);
    const a = 0.6 / 0.65;
    const b = 0.4 / 0.35;
    close(q, [a / (a + b), b / (a + b)]);
    // a uniform p_cf changes nothing
    expect(calibratedPredictions(probs, [0.5, 0.5])).toEqual([0, 0, 1]);
  });
  test("StaICC's p_cf: the mean softmax over the content-free prompts' label logits", () => {
    const pcf = contentFreeFromLogits([[0, Math.log(3)], [Math.log(3), 0], [0, Math.log(9)]]);
    close(pcf, [(0.25 + 0.75 + 0.1) / 3, (0.75 + 0.25 + 0.9) / 3]);
    close(meanDistribution([[1, 0], [0, 1]]), [0.5, 0.5]);
  });
  test("Zhao's p_cf: one per test input, from its own content-free inputs", () => {
    // input 0: its three content-free inputs average to [0.9, 0.1]; input 1: to [0.1, 0.9]
    const cf0 = zhaoContentFree([[Math.log(9), 0], [Math.log(9), 0], [Math.log(9), 0]]);
    const cf1 = zhaoContentFree([[0, Math.log(9)], [0, Math.log(4)], [0, Math.log(14)]]);
    close(cf0, [0.9, 0.1]);
    close(cf1, [(0.1 + 0.2 + 1 / 15) / 3, (0.9 + 0.8 + 14 / 15) / 3]);
    // 0.7/0.9 < 0.3/0.1 → 1; 0.6/0.122 > 0.4/0.878 → 0
    expect(calibratedPredictions(probs.slice(0, 2), [cf0, cf1])).toEqual([1, 0]);
    expect(() => calibratedPredictions(probs, [cf0, cf1])).toThrow(/2 p_cf vectors for 3 inputs/);
  });
  test("a zero p_cf is an error", () => {
    expect(() => calibrate([0.5, 0.5], [1, 0])).toThrow(/p_cf\[1\] = 0/);
  });
});

describe("consistency", () => {
  test("template consistency: largest group of equal predictions / 9, averaged over queries", () => {
    const preds = [
      ...[1, 1, 1, 1, 1, 1, 1, 1, 1], // 9/9
      ...[0, 1, 0, 1, 0, 1, 0, 0, 0], // 6/9
      ...[0, 1, 2, 0, 1, 2, 0, 1, 2], // 3/9
    ];
    expect(groupConsistency(preds.slice(9, 18))).toBe(6 / 9);
    expect(Math.abs(templateConsistency(preds) - (1 + 6 / 9 + 3 / 9) / 3)).toBeLessThan(1e-12);
  });
  test("demonstration consistency: 8 sets per query", () => {
    const preds = [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 0, 1, 2, 3];
    expect(demonstrationConsistency(preds)).toBe((7 / 8 + 2 / 8) / 2);
    // as one group of 16: nine zeros
    expect(predictionConsistency(preds, 16)).toBe(9 / 16);
  });
  test("predictions that are not whole groups are an error", () => {
    expect(() => templateConsistency([0, 1, 2])).toThrow(/3 predictions are not whole groups of 9/);
    expect(() => demonstrationConsistency([])).toThrow(/not whole groups/);
  });
});
