// Classification metrics and the CPU side of the baselines and analyses (../shared/docs/abft-method.md
// §2 and §5): accuracy, macro-F1, per-class accuracy; contextual calibration; template and
// demonstration consistency. Everything works on predictions or on label-token scores that the GPU
// evaluation returns ([L] logits or probabilities of the label tokens at the last position).
//
// Conventions (decisions):
// - argmax takes the first maximum (the lowest label index) on ties; a NaN score is an error.
// - per-class accuracy is the recall of each class (correct / inputs of that class); NaN (null in
//   the report) for a class with no inputs.
// - macro-F1 averages F1 over the classes that occur among the gold labels or the predictions
//   (scikit-learn's default); a class never predicted has precision 0, so F1 0.
// - contextual calibration predicts argmax_l p_l / p_cf_l. StaICC's variant: p_cf is the mean, over N
//   content-free prompts (k demonstrations drawn with replacement from the training pool, an empty
//   query; splits.ts sampleCalibrationPrompts), of the softmax over the label tokens, one p_cf for all
//   test inputs. Zhao et al.'s original: p_cf of a test input is the mean softmax of its own
//   demonstrations with the content-free queries "N/A", "", "[MASK]" (prompts.ts
//   PromptBuilder.contentFreePrompts), renormalised. Renormalising p / p_cf never changes the argmax.
// - consistency (StaICC-Diag): per query, the size of the largest group of equal predictions divided
//   by the group size (9 templates, or 8 demonstration sets), averaged over queries; predictions come
//   query-major (prediction q * groupSize + j).

export class MetricError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MetricError";
  }
}

type Vec = ArrayLike<number>;

export function argmax(xs: Vec): number {
  if (xs.length === 0) throw new MetricError("argmax of an empty vector");
  let best = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i])) throw new MetricError(`argmax: score ${i} is NaN`);
    if (xs[i] > xs[best]) best = i;
  }
  return best;
}

/** softmax in float64, max-shifted: [L] label-token logits → [L] probabilities */
export function softmax(logits: Vec): Float64Array {
  const out = new Float64Array(logits.length);
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - m);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** the predicted label of every input: argmax of its [L] scores */
export function predictions(scores: readonly Vec[]): number[] {
  return scores.map((s) => argmax(s));
}

function checkPair(pred: Vec, gold: Vec): void {
  if (pred.length !== gold.length) throw new MetricError(`${pred.length} predictions for ${gold.length} gold labels`);
  if (pred.length === 0) throw new MetricError("no predictions");
}

export function accuracy(pred: Vec, gold: Vec): number {
  checkPair(pred, gold);
  let c = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) c++;
  return c / pred.length;
}

/** [nClasses][nClasses] counts: row = gold label, column = predicted label */
export function confusionMatrix(pred: Vec, gold: Vec, nClasses: number): number[][] {
  checkPair(pred, gold);
  const m = Array.from({ length: nClasses }, () => new Array<number>(nClasses).fill(0));
  for (let i = 0; i < pred.length; i++) {
    const g = gold[i];
    const p = pred[i];
    if (!(Number.isInteger(g) && g >= 0 && g < nClasses)) throw new MetricError(`gold label ${g} at ${i} is outside [0, ${nClasses})`);
    if (!(Number.isInteger(p) && p >= 0 && p < nClasses)) throw new MetricError(`prediction ${p} at ${i} is outside [0, ${nClasses})`);
    m[g][p]++;
  }
  return m;
}

/** recall of each class; NaN for a class with no inputs */
export function perClassAccuracy(pred: Vec, gold: Vec, nClasses: number): number[] {
  const m = confusionMatrix(pred, gold, nClasses);
  return m.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n === 0 ? NaN : row[c] / n;
  });
}

export function macroF1(pred: Vec, gold: Vec, nClasses: number): number {
  const m = confusionMatrix(pred, gold, nClasses);
  let sum = 0;
  let classes = 0;
  for (let c = 0; c < nClasses; c++) {
    const tp = m[c][c];
    let goldN = 0;
    let predN = 0;
    for (let j = 0; j < nClasses; j++) {
      goldN += m[c][j];
      predN += m[j][c];
    }
    if (goldN === 0 && predN === 0) continue;
    classes++;
    // F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (goldN + predN)
    sum += (2 * tp) / (goldN + predN);
  }
  return sum / classes;
}

export interface ClassificationReport {
  n: number;
  accuracy: number;
  macroF1: number;
  /** recall per class, in label order; null for a class with no inputs */
  perClassAccuracy: (number | null)[];
  /** inputs per class (gold) */
  perClassCount: number[];
  /** [gold][pred] */
  confusion: number[][];
  labels?: string[];
}

export function classificationReport(pred: Vec, gold: Vec, nClasses: number, labels?: readonly string[]): ClassificationReport {
  const confusion = confusionMatrix(pred, gold, nClasses);
  return {
    n: pred.length,
    accuracy: accuracy(pred, gold),
    macroF1: macroF1(pred, gold, nClasses),
    perClassAccuracy: perClassAccuracy(pred, gold, nClasses).map((x) => (Number.isNaN(x) ? null : x)),
    perClassCount: confusion.map((row) => row.reduce((a, b) => a + b, 0)),
    confusion,
    ...(labels ? { labels: [...labels] } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Contextual calibration

/** the elementwise mean of [L] distributions (StaICC's p_cf over N content-free prompts) */
export function meanDistribution(probs: readonly Vec[]): Float64Array {
  if (probs.length === 0) throw new MetricError("mean of no distributions");
  const L = probs[0].length;
  const out = new Float64Array(L);
  for (const p of probs) {
    if (p.length !== L) throw new MetricError(`distributions of ${p.length} and ${L} labels`);
    for (let i = 0; i < L; i++) out[i] += p[i];
  }
  for (let i = 0; i < L; i++) out[i] /= probs.length;
  return out;
}

/** StaICC's p_cf: the mean softmax of the content-free prompts' [L] label-token logits */
export function contentFreeFromLogits(logits: readonly Vec[]): Float64Array {
  return meanDistribution(logits.map((l) => softmax(l)));
}

/** Zhao et al.'s p_cf of one test input: the mean of its content-free inputs' softmaxes, renormalised */
export function zhaoContentFree(logitsOfContentFreeInputs: readonly Vec[]): Float64Array {
  const m = contentFreeFromLogits(logitsOfContentFreeInputs);
  let s = 0;
  for (const x of m) s += x;
  return m.map((x) => x / s);
}

/** p / p_cf, renormalised to sum 1 (Zhao's W = diag(p_cf)^-1, b = 0) */
export function calibrate(p: Vec, pcf: Vec): Float64Array {
  if (p.length !== pcf.length) throw new MetricError(`a distribution of ${p.length} labels against a p_cf of ${pcf.length}`);
  const out = new Float64Array(p.length);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(pcf[i] > 0) || !Number.isFinite(pcf[i])) throw new MetricError(`p_cf[${i}] = ${pcf[i]}: calibration needs positive, finite p_cf`);
    out[i] = p[i] / pcf[i];
    s += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= s;
  return out;
}

/**
 * Calibrated predictions argmax(p / p_cf) from the test inputs' [L] label probabilities. `pcf`: one
 * vector for all inputs (StaICC), or one per input (Zhao).
 */
export function calibratedPredictions(probs: readonly Vec[], pcf: Vec | readonly Vec[]): number[] {
  const perInput = pcf.length > 0 && typeof (pcf as readonly Vec[])[0] !== "number";
  if (perInput && pcf.length !== probs.length) throw new MetricError(`${pcf.length} p_cf vectors for ${probs.length} inputs`);
  return probs.map((p, i) => argmax(calibrate(p, perInput ? (pcf as readonly Vec[])[i] : (pcf as Vec))));
}

// ---------------------------------------------------------------------------------------------
// Consistency (StaICC-Diag)

/** the size of the largest group of equal values, divided by the number of values */
export function groupConsistency(preds: Vec): number {
  if (preds.length === 0) throw new MetricError("consistency of an empty group");
  const counts = new Map<number, number>();
  let best = 0;
  for (let i = 0; i < preds.length; i++) {
    const c = (counts.get(preds[i]) ?? 0) + 1;
    counts.set(preds[i], c);
    if (c > best) best = c;
  }
  return best / preds.length;
}

/** mean group consistency of query-major predictions, groupSize predictions per query */
export function predictionConsistency(preds: Vec, groupSize: number): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new MetricError(`group size ${groupSize}`);
  if (preds.length === 0 || preds.length % groupSize !== 0) {
    throw new MetricError(`${preds.length} predictions are not whole groups of ${groupSize}`);
  }
  const arr = Array.from(preds);
  let sum = 0;
  const q = arr.length / groupSize;
  for (let i = 0; i < q; i++) sum += groupConsistency(arr.slice(i * groupSize, (i + 1) * groupSize));
  return sum / q;
}

/** template consistency: query-major predictions under the 9 templates (templates.ts) */
export function templateConsistency(preds: Vec, templates = 9): number {
  return predictionConsistency(preds, templates);
}

/** demonstration consistency: query-major predictions with 8 demonstration sets per query */
export function demonstrationConsistency(preds: Vec, sets = 8): number {
  return predictionConsistency(preds, sets);
}
