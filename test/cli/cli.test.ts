// The CLI from source: help, errors and `doctor --json`, run as a user would (a subprocess).
import { describe, expect, test } from "bun:test";

const MAIN = `${import.meta.dir}/../../src/cli/main.ts`;

async function abft(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", MAIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text()];
  return { code: await proc.exited, stdout, stderr };
}

describe("abft CLI", () => {
  test("--help lists the commands and exits 0", async () => {
    const r = await abft(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: abft");
    expect(r.stdout).toContain("doctor");
  });

  test("doctor --help explains its options", async () => {
    const r = await abft(["doctor", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--json");
  });

  test("an unknown option is a one-line error with a non-zero exit", async () => {
    const r = await abft(["doctor", "--jsn"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split("\n")[0]).toBe("error: unknown option '--jsn'");
  });

  test("an unknown command is an error", async () => {
    const r = await abft(["frobnicate"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  test("doctor --json reports a real adapter and a passing self-check", async () => {
    const r = await abft(["doctor", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.adapter.backend).toBe("vulkan");
    expect(report.adapter.device).not.toBe("null-backend");
    expect(report.selfcheck).toBe("ok");
    expect(Array.isArray(report.features)).toBe(true);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(report.kernels.failed).toEqual([]);
  });

  test("without a Vulkan driver doctor refuses the null backend and says how to get an adapter", async () => {
    const r = await abft(["doctor", "--json"], { VK_DRIVER_FILES: "/nonexistent/icd.json", VK_ICD_FILENAMES: "/nonexistent/icd.json" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("abft: error: no usable WebGPU adapter");
    expect(r.stderr).toContain("mesa-vulkan-drivers");
    expect(r.stderr).toContain("NVIDIA driver");
  });
});
