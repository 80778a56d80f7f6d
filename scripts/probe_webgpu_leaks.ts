// `bun scripts/probe_webgpu_leaks.ts [bindgroup|buffer] [count]`: how much resident memory bun-webgpu
// keeps per bind group (or buffer) created and destroyed, with the device ticked and submits between.
// This is the measurement behind the README's note on bind groups (it found about 4.7 KB each).
import { getRuntime } from "../src/gpu/runtime.ts";

const mode = process.argv[2] ?? "bindgroup";
const count = Number(process.argv[3] ?? 20000);
const rt = await getRuntime();
const dev = rt.gpu.device;
const k = rt.pipelines.get("residual_forward");
const bufs = Array.from({ length: 3 }, () => dev.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE }));
const arena = dev.createBuffer({ size: 4096, usage: GPUBufferUsage.UNIFORM });
const rss = () => (Bun.gc(true), process.memoryUsage().rss);
const warm = Math.floor(count / 10);
let base = 0;
for (let i = 1; i <= count; i++) {
  if (mode === "bindgroup") {
    const entries = [{ binding: 0, resource: { buffer: arena, offset: 0, size: 256 } }, ...bufs.map((b, j) => ({ binding: j + 1, resource: { buffer: b, offset: 0, size: 4096 } }))];
    dev.createBindGroup({ layout: k.layout, entries }).destroy();
  } else {
    dev.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE }).destroy();
  }
  if (i % 100 === 0) {
    dev.queue.submit([]);
    await dev.queue.onSubmittedWorkDone();
    dev.tick();
  }
  if (i === warm) base = rss();
}
const grown = rss() - base;
console.log(`${mode}: resident memory grew ${(grown / 2 ** 20).toFixed(1)} MiB over ${count - warm} create+destroy, ${(grown / (count - warm) / 1024).toFixed(2)} KiB each (${rt.gpu.adapter.description})`);
process.exit(0);
