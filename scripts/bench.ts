// `bun run bench <suite> [options]`: the benchmarks. Each suite prints a table with the adapter
// and writes the same rows as JSON to bench-results/. Suites:
//   kernels  every kernel at real shapes (TFLOP/s, GB/s)          scripts/suites/kernels.ts
//   models   loading (GB/s disk to GPU) and one forward pass       scripts/suites/models.ts
//   eval     test inputs per second                               scripts/suites/eval.ts
//   abft     ms per training sample, peak GPU memory              scripts/suites/abft.ts
//   soak     2,000 training steps, memory sampled every 100       scripts/suites/soak.ts
//   quant    NF4 + LoRA: GPU memory and ms per ABFT sample        scripts/suites/quant.ts
// On a software adapter (lavapipe) the suites run their small cases only unless --full is given.
const SUITES = ["kernels", "models", "eval", "abft", "soak", "quant"] as const;

const [suite, ...rest] = process.argv.slice(2);
if (!(SUITES as readonly string[]).includes(suite ?? "")) {
  console.error(`bench: unknown suite '${suite ?? ""}' (suites: ${SUITES.join(", ")})`);
  process.exit(2);
}
const mod = (await import(`./suites/${suite}.ts`)) as { main(args: string[]): Promise<number> };
try {
  process.exit(await mod.main(rest));
} catch (e) {
  // a bad option or a run out of memory: one line, and the stack with --debug (as abft's own)
  console.error(`bench ${suite}: ${(e as Error).message}`);
  if (rest.includes("--debug")) console.error((e as Error).stack);
  process.exit(1);
}
export {};
