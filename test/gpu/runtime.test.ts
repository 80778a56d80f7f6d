// The GPU runtime on the real adapter (lavapipe here and in CI): never Dawn's null backend.
import { describe, expect, test } from "bun:test";
import { GpuOutOfMemoryError, GpuRuntimeError, KernelCompileError } from "../../src/gpu/errors.ts";
import { kernelInfo, kernelNames, registerKernelSourceForTest } from "../../src/gpu/kernels.ts";
import { sizeClass } from "../../src/gpu/buffers.ts";
import { residualForward } from "../../src/ops/residual.ts";
import { gpuRuntime, testRng } from "../helpers.ts";

describe("adapter", () => {
  test("is a real Vulkan adapter, not the null backend", async () => {
    const rt = await gpuRuntime();
    expect(rt.gpu.adapter.backend).toBe("vulkan");
    expect(rt.gpu.adapter.device).not.toBe("null-backend");
    expect(rt.gpu.adapter.description.length).toBeGreaterThan(0);
  });

  test("the device got the adapter's limits, not the WebGPU baseline", async () => {
    const rt = await gpuRuntime();
    const lim = rt.gpu.device.limits;
    expect(lim.maxStorageBufferBindingSize).toBe(rt.gpu.limits.maxStorageBufferBindingSize);
    expect(lim.maxComputeWorkgroupStorageSize).toBe(rt.gpu.limits.maxComputeWorkgroupStorageSize);
    expect(lim.maxComputeInvocationsPerWorkgroup).toBeGreaterThan(256);
  });

  test("a kernel computes what the CPU computes", async () => {
    const rt = await gpuRuntime();
    const rng = testRng("runtime-add");
    const N = 1031;
    const a = rng.normalF32(N), b = rng.normalF32(N);
    const A = rt.upload(a), B = rt.upload(b), out = rt.pool.acquire(N * 4);
    residualForward(rt, out, A, B, N);
    const got = await rt.readF32(out, N);
    for (let i = 0; i < N; i++) expect(got[i]).toBe(Math.fround(a[i] + b[i]));
    for (const x of [A, B, out]) rt.pool.release(x);
  });
});

describe("kernel registry", () => {
  test("a WGSL error is reported with the kernel's file name and line", async () => {
    const rt = await gpuRuntime();
    registerKernelSourceForTest("broken_for_test", "// a comment\n@compute @workgroup_size(64)\nfn main() {\n  let x: f32 = 1u;\n}\n");
    const err = await rt.pipelines.compile("broken_for_test").catch((e) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect(err.message).toContain("kernels/broken_for_test.wgsl:4:");
  });

  test("//!include pastes kernels/lib/ files in; an error inside one names that file and line", async () => {
    const rt = await gpuRuntime();
    expect(kernelInfo("gelu_forward").source).toContain("fn gelu_u(");
    expect(kernelNames()).not.toContain("lib/gelu");
    registerKernelSourceForTest("lib/broken_lib_for_test", "// lib\nfn bad() -> f32 {\n  return 1u;\n}\n");
    registerKernelSourceForTest("uses_broken_lib", "//!include lib/broken_lib_for_test.wgsl\n@compute @workgroup_size(1)\nfn main() {}\n");
    const err = await rt.pipelines.compile("uses_broken_lib").catch((e) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect(err.message).toContain("kernels/lib/broken_lib_for_test.wgsl:3:");
    registerKernelSourceForTest("missing_lib", "//!include lib/nope.wgsl\n");
    expect(() => kernelInfo("missing_lib")).toThrow(/no file kernels\/lib\/nope.wgsl to include/);
  });

  test("an unknown kernel, entry point or parameter is a clear error", async () => {
    const rt = await gpuRuntime();
    expect(() => rt.pipelines.get("no_such_kernel")).toThrow(/no file kernels\/no_such_kernel.wgsl/);
    expect(() => rt.pipelines.get("residual_forward:nope")).toThrow(/no entry point 'nope'/);
    const a = rt.pool.acquire(64);
    expect(() =>
      rt.dispatch("residual_forward", { params: { N: 4, M: 1 }, bind: { a, b: a, out: a }, workgroups: [1] }),
    ).toThrow(/unknown parameter 'M'/);
    expect(() => rt.dispatch("residual_forward", { params: {}, bind: { a, b: a, out: a }, workgroups: [1] })).toThrow(
      /parameter 'N' is undefined/,
    );
    expect(() => rt.dispatch("residual_forward", { params: { N: 4 }, bind: { a, b: a }, workgroups: [1] })).toThrow(
      GpuRuntimeError,
    );
    rt.pool.release(a);
  });

  test("a validation error inside a submit is thrown at the next read, naming the kernel", async () => {
    const rt = await gpuRuntime();
    const x = rt.pool.acquire(64);
    residualForward(rt, x, x, x, 16); // the output aliases an input: invalid in WebGPU
    const err = await rt.read(x, 16).catch((e) => e);
    expect(err).toBeInstanceOf(GpuRuntimeError);
    expect(err.message).toContain("residual_forward");
    await rt.sync(); // the error was reported once and cleared
    rt.pool.release(x);
  });

  test("pipelines are compiled once per kernel", async () => {
    const rt = await gpuRuntime();
    expect(rt.pipelines.get("residual_forward")).toBe(rt.pipelines.get("residual_forward"));
  });
});

describe("buffer pool", () => {
  test("a released buffer is reused for the next request of its size class", async () => {
    const rt = await gpuRuntime();
    const a = rt.pool.acquire(1000);
    const id = a.id;
    rt.pool.release(a);
    const reusesBefore = rt.pool.stats.reuses;
    const b = rt.pool.acquire(900); // same size class as 1000
    expect(b.id).toBe(id);
    expect(rt.pool.stats.reuses).toBe(reusesBefore + 1);
    const c = rt.pool.acquire(1000); // the class is empty again: a new buffer
    expect(c.id).not.toBe(id);
    rt.pool.release(b);
    rt.pool.release(c);
  });

  test("size classes waste at most 25%", () => {
    for (const n of [1, 255, 257, 1000, 4097, 123457, 2 ** 27 + 5]) {
      const s = sizeClass(n);
      expect(s).toBeGreaterThanOrEqual(n);
      if (n > 256) expect(s / n).toBeLessThanOrEqual(1.25 + 1e-9);
    }
  });

  test("asking for more than the adapter allows says how much was asked and allowed", async () => {
    const rt = await gpuRuntime();
    const tooBig = rt.gpu.limits.maxBufferSize + 1024;
    let err: unknown;
    try {
      rt.pool.allocate(tooBig, "huge");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect((err as Error).message).toContain(`${Math.ceil(tooBig / 4) * 4} bytes`);
    expect((err as Error).message).toContain("the adapter allows");
  });

  test("bind groups are cached and forgotten with their buffers", async () => {
    const rt = await gpuRuntime();
    const before = rt.bindGroupCount;
    const x = rt.pool.allocate(64, "x");
    const y = rt.pool.allocate(64, "y");
    for (let i = 0; i < 5; i++) residualForward(rt, y, x, x, 16);
    await rt.sync();
    expect(rt.bindGroupCount).toBe(before + 1);
    rt.pool.destroy(x);
    expect(rt.bindGroupCount).toBe(before);
    rt.pool.destroy(y);
  });
});

describe("bind-group cache", () => {
  test("stays bounded when pooled buffers meet in ever new combinations", async () => {
    const rt = await gpuRuntime();
    const bufs = Array.from({ length: 24 }, (_, i) => rt.pool.allocate(64, `combo-${i}`));
    let n = 0;
    for (let a = 0; a < 24 && n < rt.maxBindGroups + 500; a++)
      for (let b = 0; b < 24 && n < rt.maxBindGroups + 500; b++)
        for (let o = 0; o < 24 && n < rt.maxBindGroups + 500; o++) {
          if (o === a || o === b) continue;
          residualForward(rt, bufs[o], bufs[a], bufs[b], 16);
          n++;
        }
    await rt.sync();
    expect(n).toBe(rt.maxBindGroups + 500);
    expect(rt.bindGroupCount).toBeLessThanOrEqual(rt.maxBindGroups);
    for (const b of bufs) rt.pool.destroy(b);
    expect(rt.bindGroupCount).toBeLessThan(rt.maxBindGroups);
  });
});

describe("timing", () => {
  test("timestamp queries measure a positive GPU time when the feature exists", async () => {
    const rt = await gpuRuntime();
    const N = 1 << 16;
    const a = rt.pool.acquire(N * 4);
    const b = rt.pool.acquire(N * 4);
    const ms = await rt.timeGpu(() => {
      for (let i = 0; i < 20; i++) residualForward(rt, b, a, a, N);
    });
    rt.pool.release(b);
    if (rt.hasTimestamps) {
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(60_000);
    } else {
      expect(ms).toBeUndefined();
    }
    rt.pool.release(a);
  });
});
