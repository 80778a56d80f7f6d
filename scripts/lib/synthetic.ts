// ICL-shaped prompts of random tokens for benchmarks on random-weight models: `k` demonstrations
// whose label tokens sit at known positions, `n` tokens in all (the paper's prompts are ~160).
import type { IclPrompt } from "../../src/icl/prompts.ts";
import { Rng } from "../../src/util/random.ts";

export function syntheticPrompts(count: number, n: number, vocab: number, opts: { k?: number; labels?: number; seed?: number } = {}): IclPrompt[] {
  const k = opts.k ?? 4;
  const L = opts.labels ?? 2;
  const rng = new Rng(opts.seed ?? 7);
  const labelIds = Array.from({ length: L }, (_, i) => 1000 + 17 * i);
  return Array.from({ length: count }, () => {
    const ids = Array.from({ length: n }, () => 2000 + rng.int(vocab - 2000));
    const positions = Array.from({ length: k }, (_, d) => Math.floor(((d + 1) * (n - 4)) / (k + 1)));
    const demoLabels = positions.map(() => rng.int(L));
    positions.forEach((p, d) => (ids[p] = labelIds[demoLabels[d]]));
    const label = rng.int(L);
    return {
      input_ids: ids,
      label_positions: positions,
      correct_positions: positions.filter((_, d) => demoLabels[d] === label),
      label,
      label_token_ids: labelIds,
    };
  });
}
