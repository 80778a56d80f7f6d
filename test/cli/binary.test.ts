// The compiled executable: built by `bun run build`, copied alone to a temporary directory (no
// node_modules, no sources beside it), it must still find its kernels and the WebGPU library.
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

test("dist/abft copied alone to /tmp runs doctor --json on a real adapter", async () => {
  const build = Bun.spawnSync(["bun", "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  const dir = mkdtempSync(join(tmpdir(), "abft-bin-"));
  try {
    const bin = join(dir, "abft");
    copyFileSync(join(ROOT, "dist", "abft"), bin);
    Bun.spawnSync(["chmod", "+x", bin]);
    const proc = Bun.spawnSync([bin, "doctor", "--json"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    expect(proc.exitCode).toBe(0);
    const report = JSON.parse(proc.stdout.toString());
    expect(report.adapter.device).not.toBe("null-backend");
    expect(report.selfcheck).toBe("ok");
    expect(report.kernels.compiled).toBeGreaterThan(0);
    // the tokenizer, the data readers and the evaluation work from the binary too
    const shared = join(ROOT, "..", "shared");
    const ev = Bun.spawnSync(
      [bin, "eval", "--model", join(shared, "models", "babygpt2"), "--task", "sst2", "--data", join(shared, "data"), "--test-queries", "1", "--json", "--out", join(dir, "e.json")],
      { cwd: dir, stdout: "pipe", stderr: "pipe" },
    );
    expect(ev.exitCode).toBe(0);
    expect(JSON.parse(ev.stdout.toString()).n).toBe(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
