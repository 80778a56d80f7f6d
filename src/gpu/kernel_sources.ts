// Reads every kernels/*.wgsl file. Imported by src/gpu/kernels.ts as a Bun macro
// (`with { type: "macro" }`), so it runs when the code is bundled or transpiled and the sources
// are inlined as string constants: the compiled binary carries its kernels, no list to maintain.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function readKernelSources(): Record<string, string> {
  const dir = join(import.meta.dir, "..", "..", "kernels");
  const sources: Record<string, string> = {};
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith(".wgsl")) sources[file.slice(0, -5)] = readFileSync(join(dir, file), "utf8");
  }
  return sources;
}
