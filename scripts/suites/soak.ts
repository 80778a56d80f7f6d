// `bun run bench soak [--steps N]`: 2,000 ABFT training steps on babygpt2 (real SST-2 prompts,
// pseudo-batch 1, micro-batch 1, --threshold 0.05 so that heads pass and every step back-propagates),
// sampling the process's resident memory and abft's GPU memory every 100 steps. Both must stay
// flat after warm-up: the suite fails if the last sample exceeds the one at step 200 by more than 10%.
import { join } from "node:path";
import { buildModel } from "../../models/registry.ts";
import { PAPER_GAINS } from "../../src/abft/pid.ts";
import { Trainer } from "../../src/abft/train.ts";
import { getRuntime } from "../../src/gpu/runtime.ts";
import { buildStandardSets, PromptBuilder } from "../../src/icl/prompts.ts";
import { loadTaskData, resolveTask, withDataPath } from "../../src/icl/tasks.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { numberOption } from "../lib/args.ts";
import { MiB, printTable, writeResults, type Row } from "../lib/report.ts";

const SHARED = join(import.meta.dir, "..", "..", "..", "shared");

export async function main(args: string[]): Promise<number> {
  const steps = numberOption(args, "--steps", 2000);
  const rt = await getRuntime();
  const baby = join(SHARED, "models", "babygpt2");
  const ckpt = Checkpoint.open(baby);
  const model = buildModel(rt, loadConfig(baby), ckpt);
  ckpt.close();
  const task = withDataPath(resolveTask("sst2"), join(SHARED, "data"));
  const sets = buildStandardSets(new PromptBuilder(loadTokenizer(baby), task), await loadTaskData(task), 0, { testQueries: 1 });
  const trainer = new Trainer(model, sets.train, {
    objective: "abft", steps, batch: 1, microBatch: 1, lr: 1e-4, A: 0.5, B: 1, pid: true, gains: PAPER_GAINS,
    headFilter: true, threshold: 0.05, trainBias: false, seed: 0,
  });
  const rows: Row[] = [];
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) {
    await trainer.step();
    if (s % 100 === 0 || s === steps) {
      Bun.gc(true);
      const row = { step: s, "RSS MiB": process.memoryUsage().rss / MiB, "GPU in use MiB": rt.pool.stats.inUse / MiB, "GPU pooled MiB": rt.pool.stats.free / MiB, "bind groups": rt.bindGroupCount, "s": (performance.now() - t0) / 1000 };
      rows.push(row);
      console.error(`step ${s}: RSS ${row["RSS MiB"].toFixed(1)} MiB, GPU ${(row["GPU in use MiB"] + row["GPU pooled MiB"]).toFixed(1)} MiB`);
    }
  }
  printTable("bench soak", rt, rows);
  writeResults("soak", rt, rows);
  const ref = rows.find((r) => r.step === 200) ?? rows[0];
  const last = rows[rows.length - 1];
  const grew = (k: string) => (last[k] as number) > (ref[k] as number) * 1.1 + 1;
  const bad = ["RSS MiB", "GPU in use MiB", "GPU pooled MiB"].filter(grew);
  if (bad.length) {
    console.error(`soak: ${bad.join(", ")} grew by more than 10% after step ${ref.step}`);
    return 1;
  }
  console.log(`soak: flat after step ${ref.step} (RSS ${(ref["RSS MiB"] as number).toFixed(1)} → ${(last["RSS MiB"] as number).toFixed(1)} MiB)`);
  return 0;
}
