// `bun run bench kernels [--full] [--filter TEXT] [--iters N]`: every case of scripts/bench/*.ts.
// Prints a table — kernel, size, ms per run, TFLOP/s or GB/s — with the adapter, and writes the
// same as JSON to bench-results/.
// By default only cases marked `quick` run on a software adapter (lavapipe); --full runs all.
// GPU time comes from timestamp queries around many runs in one pass (Dawn quantizes them),
// or, without the feature, from wall-clock time around a synced batch.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { adapterLine } from "../../src/gpu/device.ts";
import { getRuntime, type Runtime } from "../../src/gpu/runtime.ts";
import type { BenchCase } from "../bench/types.ts";

interface Result {
  kernel: string;
  size: string;
  ms: number;
  tflops?: number;
  gbps?: number;
  iters: number;
  timer: "gpu-timestamps" | "wall-clock";
}

async function loadCases(): Promise<BenchCase[]> {
  const dir = join(import.meta.dir, "..", "bench");
  const cases: BenchCase[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(".ts") || f === "types.ts") continue;
    const mod = (await import(join(dir, f))) as { cases?: BenchCase[] };
    cases.push(...(mod.cases ?? []));
  }
  return cases;
}

async function timeCase(rt: Runtime, c: BenchCase, iters: number): Promise<Result> {
  const { run, cleanup } = await c.setup(rt);
  try {
    run(); // warm-up: compiles the pipeline, faults in the buffers
    await rt.sync();
    // Pick an iteration count that takes ~0.2 s of GPU time (at least `iters`).
    const t0 = performance.now();
    run();
    await rt.sync();
    const once = Math.max(performance.now() - t0, 0.001);
    const n = Math.max(iters, Math.min(1000, Math.ceil(200 / once)));
    let ms: number;
    let timer: Result["timer"];
    const gpuMs = await rt.timeGpu(() => {
      for (let i = 0; i < n; i++) run();
    });
    if (gpuMs !== undefined && gpuMs > 0) {
      ms = gpuMs / n;
      timer = "gpu-timestamps";
    } else {
      const w0 = performance.now();
      for (let i = 0; i < n; i++) run();
      await rt.sync();
      ms = (performance.now() - w0) / n;
      timer = "wall-clock";
    }
    const r: Result = { kernel: c.kernel, size: c.size, ms, iters: n, timer };
    if (c.flops) r.tflops = c.flops / (ms * 1e-3) / 1e12;
    if (c.bytes) r.gbps = c.bytes / (ms * 1e-3) / 1e9;
    return r;
  } finally {
    cleanup();
  }
}

function printTable(adapter: string, rows: Result[]): void {
  console.log(`adapter: ${adapter}`);
  const header = ["kernel", "size", "ms/run", "TFLOP/s", "GB/s", "timer"];
  const lines = rows.map((r) => [
    r.kernel,
    r.size,
    r.ms.toFixed(4),
    r.tflops === undefined ? "" : r.tflops.toFixed(2),
    r.gbps === undefined ? "" : r.gbps.toFixed(1),
    r.timer,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const l of lines) console.log(fmt(l));
}

export async function main(args: string[]): Promise<number> {
  const suite = "kernels";
  const full = args.includes("--full");
  const filterAt = args.indexOf("--filter");
  const filter = filterAt >= 0 ? args[filterAt + 1] : undefined;
  const itersAt = args.indexOf("--iters");
  const iters = itersAt >= 0 ? Number(args[itersAt + 1]) : 3;
  const rt = await getRuntime();
  const adapter = adapterLine(rt.gpu.adapter);
  let cases = await loadCases();
  if (rt.gpu.adapter.software && !full) cases = cases.filter((c) => c.quick);
  if (filter) cases = cases.filter((c) => `${c.kernel} ${c.size}`.includes(filter));
  console.log(`bench ${suite}: ${cases.length} cases on ${adapter}${rt.gpu.adapter.software && !full ? " (quick cases only; --full for all)" : ""}`);
  const rows: Result[] = [];
  for (const c of cases) {
    try {
      const r = await timeCase(rt, c, iters);
      rows.push(r);
      console.log(`  ${c.kernel} ${c.size}: ${r.ms.toFixed(4)} ms${r.tflops ? `, ${r.tflops.toFixed(2)} TFLOP/s` : ""}${r.gbps ? `, ${r.gbps.toFixed(1)} GB/s` : ""}`);
    } catch (e) {
      console.error(`  ${c.kernel} ${c.size}: FAILED: ${(e as Error).message}`);
      return 1;
    }
    rt.pool.trim();
  }
  printTable(adapter, rows);
  mkdirSync("bench-results", { recursive: true });
  const file = join("bench-results", `${suite}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ suite, adapter: rt.gpu.adapter, features: rt.gpu.features, results: rows }, null, 2));
  console.log(`wrote ${file}`);
  return 0;
}

