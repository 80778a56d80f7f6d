// `bun run build`: dist/abft, one executable for this machine (Linux x64) that embeds Bun, the
// kernels (inlined by the kernel_sources macro) and bun-webgpu's native library.
import { compileFor, hostTarget } from "./compile.ts";

const out = await compileFor(hostTarget(), "dist/abft");
console.log(`built ${out}`);
