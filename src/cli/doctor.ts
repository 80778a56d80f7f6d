// `abft doctor`: what this machine offers abft — versions, the adapter, its features and limits —
// and a self-check that runs a kernel on the GPU and compares it with the CPU.
import type { Command } from "commander";
import { adapterLine } from "../gpu/device.ts";
import { formatBytes } from "../gpu/errors.ts";
import { kernelNames } from "../gpu/kernels.ts";
import { getRuntime, type Runtime } from "../gpu/runtime.ts";
import { residualForward } from "../ops/residual.ts";
import { Rng } from "../util/random.ts";
import { VERSION } from "./version.ts";

/** The limits that decide what fits: binding and buffer sizes, workgroup memory and size. */
const LIMITS_OF_NOTE = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment",
] as const;

export interface DoctorReport {
  abft: string;
  bun: string;
  platform: string;
  adapter: Runtime["gpu"]["adapter"];
  features: string[];
  limits: Record<string, number>;
  kernels: { compiled: number; failed: string[] };
  selfcheck: string;
}

/** Runs residual_forward on 4099 random floats and compares with the CPU sum. */
async function selfCheck(rt: Runtime): Promise<string> {
  const rng = new Rng(0x5eed);
  const N = 4099;
  const a = rng.normalF32(N);
  const b = rng.normalF32(N);
  const A = rt.upload(a, "selfcheck-a");
  const B = rt.upload(b, "selfcheck-b");
  const out = rt.pool.acquire(N * 4, "selfcheck-out");
  residualForward(rt, out, A, B, N);
  const got = await rt.readF32(out, N);
  for (const x of [A, B, out]) rt.pool.release(x);
  let worst = 0;
  for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(got[i] - Math.fround(a[i] + b[i])));
  return worst === 0 ? "ok" : `residual_forward differs from the CPU by up to ${worst}`;
}

async function compileAll(rt: Runtime): Promise<{ compiled: number; failed: string[] }> {
  const failed: string[] = [];
  let compiled = 0;
  for (const name of kernelNames()) {
    try {
      const info = (await import("../gpu/kernels.ts")).kernelInfo(name);
      for (const entry of info.entryPoints) await rt.pipelines.compile(`${name}:${entry}`);
      compiled++;
    } catch (e) {
      failed.push((e as Error).message.split("\n")[0]);
    }
  }
  return { compiled, failed };
}

export async function doctorReport(): Promise<DoctorReport> {
  const rt = await getRuntime();
  const limits: Record<string, number> = {};
  for (const k of LIMITS_OF_NOTE) limits[k] = rt.gpu.limits[k];
  const kernels = await compileAll(rt);
  let selfcheck: string;
  try {
    selfcheck = await selfCheck(rt);
  } catch (e) {
    selfcheck = `failed: ${(e as Error).message}`;
  }
  if (selfcheck === "ok" && kernels.failed.length) selfcheck = `failed: ${kernels.failed.length} kernel(s) did not compile`;
  return {
    abft: VERSION,
    bun: Bun.version,
    platform: `${process.platform}-${process.arch}`,
    adapter: rt.gpu.adapter,
    features: rt.gpu.features,
    limits,
    kernels,
    selfcheck,
  };
}

function printHuman(r: DoctorReport): void {
  const lines = [
    `abft ${r.abft} on Bun ${r.bun} (${r.platform})`,
    `adapter:   ${adapterLine(r.adapter)}`,
    `           vendor ${r.adapter.vendor || "?"}, architecture ${r.adapter.architecture || "?"}, device ${r.adapter.device || "?"}`,
    `features:  ${r.features.join(", ") || "(none of subgroups, timestamp-query, shader-f16)"}`,
    `limits:    storage binding ${formatBytes(r.limits.maxStorageBufferBindingSize)}, buffer ${formatBytes(r.limits.maxBufferSize)}, ` +
      `workgroup memory ${formatBytes(r.limits.maxComputeWorkgroupStorageSize)}, ${r.limits.maxComputeInvocationsPerWorkgroup} invocations`,
    `kernels:   ${r.kernels.compiled} compiled${r.kernels.failed.length ? `, failed: ${r.kernels.failed.join("; ")}` : ""}`,
    `selfcheck: ${r.selfcheck}`,
  ];
  if (r.adapter.software) lines.push("note:      this is a software adapter (CPU): correct but slow; use a GPU server for real runs");
  console.log(lines.join("\n"));
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("show the GPU adapter, its features and limits, and run a self-check on it")
    .option("--json", "print one JSON object (adapter, features, limits, kernels, selfcheck)")
    .action(async (opts: { json?: boolean }) => {
      const report = await doctorReport();
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else printHuman(report);
      if (report.selfcheck !== "ok") process.exitCode = 1;
    });
}
