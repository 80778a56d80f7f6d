// Reads every kernels/*.wgsl file. Imported by src/gpu/kernels.ts as a Bun macro
// (`with { type: "macro" }`), so it runs when the code is bundled or transpiled and the sources
// are inlined as string constants: the compiled binary carries its kernels, no list to maintain.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function readKernelSources(): Record<string, string> {
  const dir = join(import.meta.dir, "..", "..", "kernels");
  const sources: Record<string, string> = {};
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith(".wgsl")) sources[file.slice(0, -5)] = readFileSync(join(dir, file), "utf8");
  }
  // kernels/lib/*.wgsl: shared WGSL that kernels pull in with `//!include lib/<name>.wgsl`
  const lib = join(dir, "lib");
  for (const file of existsSync(lib) ? readdirSync(lib).sort() : []) {
    if (file.endsWith(".wgsl")) sources[`lib/${file.slice(0, -5)}`] = readFileSync(join(dir, "lib", file), "utf8");
  }
  return sources;
}
