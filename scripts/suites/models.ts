// `bun run bench models [--full] [--shapes a,b] [--reps N]`: for random-weight models with the real
// shapes of GPT-2 (124M, large, XL) and Llama-3-8B (built from a config, written to a temporary HF
// folder): the loading time from disk to GPU (GB/s; the file was just written, so it is mostly in
// the page cache) and one forward pass at 160 tokens (B = 1) with the last-row attention of every
// layer, the mean of --reps passes (default 3; 1 on a software adapter, where an 8B pass takes
// minutes) after a short warm-up pass that compiles the pipelines.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBatch } from "../../models/common.ts";
import { buildModel } from "../../models/registry.ts";
import { getRuntime } from "../../src/gpu/runtime.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { noGrad } from "../../src/tensor/autodiff.ts";
import { scope } from "../../src/tensor/tensor.ts";
import { numberOption, listOption } from "../lib/args.ts";
import { writeRandomModel } from "../lib/random_model.ts";
import { GiB, MiB, printTable, writeResults, type Row } from "../lib/report.ts";
import { syntheticPrompts } from "../lib/synthetic.ts";

export async function main(args: string[]): Promise<number> {
  const rt = await getRuntime();
  const full = args.includes("--full") || !rt.gpu.adapter.software;
  const DTYPE: Record<string, "F32" | "BF16"> = { "gpt2-124m": "F32", "gpt2-large": "F32", "gpt2-xl": "F32", "llama-3-8b": "BF16" };
  const names = listOption(args, "--shapes", full ? Object.keys(DTYPE) : [], Object.keys(DTYPE));
  const shapes: [string, "F32" | "BF16"][] = names.length ? names.map((n) => [n, DTYPE[n]]) : [["gpt2-124m", "BF16"]];
  const reps = numberOption(args, "--reps", rt.gpu.adapter.software ? 1 : 3);
  const rows: Row[] = [];
  for (const [name, dtype] of shapes) {
    const dir = mkdtempSync(join(tmpdir(), `abft-bench-${name}-`));
    try {
      process.stderr.write(`${name}: writing random ${dtype} weights... `);
      const bytes = writeRandomModel(name, dir, dtype);
      process.stderr.write(`${(bytes / GiB).toFixed(2)} GiB\n`);
      rt.pool.trim();
      rt.pool.resetPeak();
      const peak0 = rt.pool.stats.peak;
      const t0 = performance.now();
      const ckpt = Checkpoint.open(dir);
      const model = buildModel(rt, loadConfig(dir), ckpt);
      await rt.sync();
      const loadS = (performance.now() - t0) / 1000;
      ckpt.close();
      const prompt = syntheticPrompts(1, 160, model.config.vocabSize)[0];
      const forward = async (ids = prompt.input_ids) => {
        const batch = makeBatch(rt, [ids]);
        noGrad(() => scope(() => {
          const r = model.forward(batch, { attLast: true });
          r.hidden.free();
          r.attLast.forEach((a) => a.free());
        }));
        await rt.sync();
        for (const x of [batch.ids, batch.positions, batch.lengthsT]) x.free();
      };
      process.stderr.write(`${name}: loaded in ${loadS.toFixed(1)} s; forward passes...\n`);
      await forward(prompt.input_ids.slice(0, 16)); // warm-up: compiles the pipelines
      const t1 = performance.now();
      for (let i = 0; i < reps; i++) await forward();
      const fwdMs = (performance.now() - t1) / reps;
      rows.push({
        model: name, weights: dtype, "size GiB": bytes / GiB, "load s": loadS, "load GB/s": bytes / loadS / 1e9,
        "forward ms (160 tok)": fwdMs, passes: reps, "peak GPU MiB": (rt.pool.stats.peak - peak0) / MiB,
      });
      model.dispose();
      rt.pool.trim();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  printTable("bench models", rt, rows);
  writeResults("models", rt, rows);
  return 0;
}
