// bun-webgpu leaks command buffers and mapped buffers when used naively. 10,000 submits, each a
// dispatch and a readback, must leave the resident memory within 10% of its value after 1,000.
import { expect, test } from "bun:test";

test("10,000 submits with readbacks keep resident memory flat", async () => {
  const proc = Bun.spawn(["bun", `${import.meta.dir}/soak_worker.ts`, "10000"], { stdout: "pipe", stderr: "inherit" });
  const text = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  const { submits, rss, wrong } = JSON.parse(text.trim().split("\n").pop()!);
  expect(wrong).toBe(0);
  expect(submits).toBeGreaterThanOrEqual(10_000);
  const base = rss.find((r: { after: number }) => r.after === 1000).rss;
  const last = rss[rss.length - 1].rss;
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  console.log(`soak: RSS after 1,000 submits ${mib(base)} MiB, after 10,000 ${mib(last)} MiB`);
  expect(last).toBeLessThanOrEqual(base * 1.1);
}, 600_000);
