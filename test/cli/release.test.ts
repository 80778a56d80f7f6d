// `bun run release`: four executables, each embedding its own platform's bun-webgpu library, and
// SHA256SUMS. Only linux-x64 can run here; for the others we check that the file holds the bytes
// of its platform's library (a 64 KiB slice from the middle of it) and the right executable format.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { nativeLibrary, TARGETS } from "../../scripts/compile.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAGIC: Record<string, (b: Buffer) => boolean> = {
  "linux-x64": (b) => b.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])), // ELF
  "darwin-arm64": (b) => b.readUInt32LE(0) === 0xfeedfacf && b.readUInt32LE(4) === 0x0100000c, // Mach-O arm64
  "darwin-x64": (b) => b.readUInt32LE(0) === 0xfeedfacf && b.readUInt32LE(4) === 0x01000007, // Mach-O x86_64
  "windows-x64": (b) => b.subarray(0, 2).toString() === "MZ",
};

test("release builds every platform with its own WebGPU library, and SHA256SUMS matches", async () => {
  const r = Bun.spawnSync(["bun", "run", "release"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  const sums = readFileSync(join(ROOT, "dist/release/SHA256SUMS"), "utf8").trim().split("\n");
  expect(sums.length).toBe(TARGETS.length);
  const libs = await Promise.all(TARGETS.map((t) => nativeLibrary(t).then((p) => readFileSync(p))));
  for (const [i, t] of TARGETS.entries()) {
    const name = `abft-${t.name}${t.name.startsWith("windows") ? ".exe" : ""}`;
    const bin = readFileSync(join(ROOT, "dist/release", name));
    expect(MAGIC[t.name](bin)).toBe(true);
    const lib = libs[i];
    const mid = Math.floor(lib.length / 2);
    expect(bin.indexOf(lib.subarray(mid, mid + 65536))).toBeGreaterThan(0);
    // no other platform's library inside
    for (const [j, other] of libs.entries()) {
      if (j === i) continue;
      const m = Math.floor(other.length / 2);
      expect(bin.indexOf(other.subarray(m, m + 65536))).toBe(-1);
    }
    const hash = createHash("sha256").update(bin).digest("hex");
    expect(sums).toContain(`${hash}  ${name}`);
  }
  const linux = Bun.spawnSync([join(ROOT, "dist/release/abft-linux-x64"), "--version"], { stdout: "pipe" });
  expect(linux.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+$/);
}, 600_000);
