// Soak worker (run by soak.test.ts in its own process, so other tests don't disturb its memory):
// SUBMITS submits, each one dispatch and one readback, printing the resident set size as JSON.
import { getRuntime } from "../../src/gpu/runtime.ts";
import { residualForward } from "../../src/ops/residual.ts";
import { Rng } from "../../src/util/random.ts";

const SUBMITS = Number(process.argv[2] ?? 10_000);
const rt = await getRuntime();
if (rt.gpu.adapter.backend === "null") throw new Error("null adapter");
const N = 1027;
const rng = new Rng(7);
const a = rt.upload(rng.normalF32(N));
const b = rt.upload(rng.normalF32(N));
const out = rt.pool.acquire(N * 4);
const rss: { after: number; rss: number }[] = [];
let wrong = 0;
for (let i = 1; i <= SUBMITS; i++) {
  residualForward(rt, out, i % 2 ? a : b, b, N);
  const got = await rt.readF32(out, 4);
  if (!(got[0] !== 0 && Number.isFinite(got[0]))) wrong++;
  if (i === 1000 || i % 2000 === 0 || i === SUBMITS) {
    Bun.gc(true);
    rss.push({ after: i, rss: process.memoryUsage().rss });
  }
}
console.log(JSON.stringify({ submits: rt.submits, rss, wrong }));
process.exit(0);
