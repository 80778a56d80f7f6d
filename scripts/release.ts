// `bun run release`: dist/release/abft-{linux-x64,darwin-arm64,darwin-x64,windows-x64.exe},
// each embedding its own platform's bun-webgpu native library, plus SHA256SUMS.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { compileFor, TARGETS } from "./compile.ts";

mkdirSync("dist/release", { recursive: true });
const sums: string[] = [];
for (const t of TARGETS) {
  const file = `dist/release/abft-${t.name}${t.name.startsWith("windows") ? ".exe" : ""}`;
  process.stdout.write(`compiling ${file} ... `);
  const out = await compileFor(t, file);
  const hash = createHash("sha256").update(readFileSync(out)).digest("hex");
  sums.push(`${hash}  ${basename(out)}`);
  console.log(hash.slice(0, 16));
}
writeFileSync("dist/release/SHA256SUMS", sums.join("\n") + "\n");
console.log("wrote dist/release/SHA256SUMS");
