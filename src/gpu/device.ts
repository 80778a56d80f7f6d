// Adapter and device acquisition through bun-webgpu (Dawn).
//
// Rules (docs/webgpu-notes.md):
// - request the adapter's own limits, all of them: bun-webgpu otherwise gives the WebGPU baseline
//   (128 MiB bindings, 16 KiB workgroup memory, 256 invocations);
// - request the features we use where they exist: subgroups, timestamp-query, shader-f16;
// - prefer a hardware adapter, accept a software one (Mesa lavapipe) only when nothing else exists,
//   and never accept Dawn's null backend: it "runs" every kernel and computes nothing.
import { createGPUInstance, globals } from "bun-webgpu";
import { NoAdapterError } from "./errors.ts";

/** WGPUBackendType / WGPUAdapterType numbers as Dawn reports them in adapter.info. */
const BACKEND_NAMES: Record<number, string> = {
  1: "null", 2: "webgpu", 3: "d3d11", 4: "d3d12", 5: "metal", 6: "vulkan", 7: "opengl", 8: "opengles",
};
const ADAPTER_TYPES: Record<number, string> = { 1: "discrete-gpu", 2: "integrated-gpu", 3: "cpu", 4: "unknown" };

export const WANTED_FEATURES = ["subgroups", "timestamp-query", "shader-f16"] as const;

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  adapterType: string;
  /** true for CPU implementations such as lavapipe: correct, but slow. */
  software: boolean;
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterDescription;
  features: string[];
  limits: Record<string, number>;
}

// Set by the release build's entry (scripts/release.ts) to the native library of the target platform.
declare global {
  var __ABFT_WEBGPU_LIB: string | undefined;
}

let instance: ReturnType<typeof createGPUInstance> | undefined;
let acquired: Promise<Gpu> | undefined;

/** The process-wide GPU. Acquired once; every later call returns the same device. */
export function getGpu(): Promise<Gpu> {
  acquired ??= acquireGpu();
  return acquired;
}

function describe(info: Record<string, unknown>): AdapterDescription {
  const backend = BACKEND_NAMES[Number(info.backendType)] ?? `backend-${info.backendType}`;
  const adapterType = ADAPTER_TYPES[Number(info.adapterType)] ?? "unknown";
  const device = String(info.device ?? "");
  const description = String(info.description ?? "");
  const software =
    adapterType === "cpu" || /llvmpipe|lavapipe|swiftshader/i.test(`${device} ${description}`);
  return {
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    device,
    description,
    backend,
    adapterType,
    software,
  };
}

function isNullBackend(a: AdapterDescription): boolean {
  return a.backend === "null" || a.device === "null-backend";
}

async function acquireGpu(): Promise<Gpu> {
  instance ??= createGPUInstance(globalThis.__ABFT_WEBGPU_LIB);
  globals(); // GPUBufferUsage, GPUMapMode, ... as globals

  // Ask twice: high-performance first (a discrete GPU when several exist), then the default.
  const candidates: { adapter: GPUAdapter; desc: AdapterDescription }[] = [];
  for (const powerPreference of ["high-performance", undefined] as const) {
    const adapter = await instance.requestAdapter(powerPreference ? { powerPreference } : undefined);
    if (adapter) candidates.push({ adapter, desc: describe(adapter.info as unknown as Record<string, unknown>) });
  }
  const usable = candidates.filter((c) => !isNullBackend(c.desc));
  if (usable.length === 0) {
    throw new NoAdapterError(
      candidates.length === 0
        ? "Dawn found no adapter at all (no Vulkan driver)"
        : "Dawn offers only its null backend, which computes nothing (no Vulkan driver found)",
    );
  }
  const chosen = usable.find((c) => !c.desc.software) ?? usable[0];
  const { adapter, desc } = chosen;

  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number" && key !== "nextInChain") limits[key] = value;
  }
  const features = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  // bun-webgpu 0.1.7 packs the descriptor into JS memory that a garbage collection at the wrong
  // moment can move before Dawn reads it ("Invalid feature required: Value 776" was seen once in
  // a test): collect first, and try again on that failure.
  let device: GPUDevice | null = null;
  for (let attempt = 1; !device; attempt++) {
    Bun.gc(true);
    try {
      device = await adapter.requestDevice({
        requiredFeatures: features as GPUFeatureName[],
        requiredLimits: limits as GPUDeviceDescriptor["requiredLimits"],
      });
    } catch (e) {
      if (attempt >= 3) throw new NoAdapterError(`the adapter '${desc.description}' refused to create a device: ${(e as Error).message}`);
    }
  }
  if (!device) throw new NoAdapterError(`the adapter '${desc.description}' refused to create a device`);
  device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
    // Errors inside error scopes are reported by the runtime with context; this catches the rest.
    console.error(`abft: uncaptured GPU error: ${ev.error.message}`);
  };
  return { device, adapter: desc, features: [...features], limits };
}

/** One line for logs: "NVIDIA: 580.159.04 (vulkan, discrete-gpu)". */
export function adapterLine(a: AdapterDescription): string {
  const name = a.description || a.device || a.vendor;
  return `${name} (${a.backend}, ${a.adapterType}${a.software ? ", software: slow" : ""})`;
}
