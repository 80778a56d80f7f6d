// abft_loss_pack: every layer's loss, mask and S land in their slots of [L, 3, N] bit for bit
// (NaN payloads, -0, subnormals, infinities included), the rest of the buffer is left alone, and
// the 2-D grid covers more than 65535 workgroups. The reference is the identity (a copy).
import { expect, test } from "bun:test";
import type { GpuBuffer } from "../../src/gpu/runtime.ts";
import { abftLossPack } from "../../src/ops/abft_loss_pack.ts";
import type { Rng } from "../../src/util/random.ts";
import { gpuRuntime, testRng } from "../helpers.ts";

const CANARY = 0x7fc0beef; // a NaN with a payload: the words the kernel must not touch

/** normal values with a few special bit patterns mixed in */
function words(rng: Rng, n: number): Uint32Array {
  const u = new Uint32Array(rng.normalF32(n).buffer);
  const specials = [0x80000000, 0x00000001, 0x007fffff, 0x7f800000, 0xff800000, 0x7fc01234, 0xffa00001];
  for (let s = 0; s < Math.min(n, specials.length); s++) u[rng.int(n)] = specials[s];
  return u;
}

function firstMismatches(got: Uint32Array, want: Uint32Array): string[] {
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    if (got[i] !== want[i]) bad.push(`[${i}] 0x${got[i].toString(16)} want 0x${want[i].toString(16)}`);
  }
  return bad;
}

test("each layer's loss, mask and S land in packed[layer] bit for bit, nothing else is written", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("abft-loss-pack");
  for (const [N, L] of [[1, 1], [7, 3], [163, 5], [12 * 32, 2]]) {
    const want = new Uint32Array((L + 1) * 3 * N).fill(CANARY); // one slot more than the layers filled
    const packed = rt.upload(want);
    const inputs: GpuBuffer[] = [];
    // fill the layers out of order: each dispatch must touch its own slot only
    const order = Array.from({ length: L }, (_, l) => L - 1 - l);
    for (const layer of order) {
      const [loss, mask, S] = [words(rng, N), words(rng, N), words(rng, N)];
      want.set(loss, (layer * 3 + 0) * N);
      want.set(mask, (layer * 3 + 1) * N);
      want.set(S, (layer * 3 + 2) * N);
      const bufs = { loss: rt.upload(loss), mask: rt.upload(mask), S: rt.upload(S) };
      inputs.push(bufs.loss, bufs.mask, bufs.S);
      abftLossPack(rt, packed, bufs, { N, layer });
    }
    const got = new Uint32Array(await rt.read(packed, want.length * 4));
    expect(firstMismatches(got, want)).toEqual([]);
    for (const b of [packed, ...inputs]) rt.pool.release(b);
  }
});

test("a 2-D grid covers more than 65535 workgroups; a layer past the buffer is refused", async () => {
  const rt = await gpuRuntime();
  const rng = testRng("abft-loss-pack-grid");
  const N = 65535 * 64 + 5; // 65536 workgroups of 64
  const [loss, mask, S] = [words(rng, N), words(rng, N), words(rng, N)];
  const bufs = { loss: rt.upload(loss), mask: rt.upload(mask), S: rt.upload(S) };
  const packed = rt.pool.acquire(3 * N * 4);
  abftLossPack(rt, packed, bufs, { N, layer: 0 });
  const got = new Uint32Array(await rt.read(packed, 3 * N * 4));
  for (const i of [0, 1, 65535 * 64 + 2, N - 1]) {
    expect(got[i]).toBe(loss[i]);
    expect(got[N + i]).toBe(mask[i]);
    expect(got[2 * N + i]).toBe(S[i]);
  }
  expect(() => abftLossPack(rt, packed, bufs, { N, layer: 1 + Math.floor(packed.size / (12 * N)) })).toThrow(/does not fit/);
  for (const b of [packed, bufs.loss, bufs.mask, bufs.S]) rt.pool.release(b);
});
