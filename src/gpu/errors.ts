// Error classes of the GPU runtime. Each has a `code` (stable, for scripts) and a `hint` (the
// next step for a person). The CLI prints `message` and `hint` on one line each and exits non-zero.

export class AbftError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

const HOW_TO_GET_AN_ADAPTER =
  "on a GPU server install the NVIDIA driver with its Vulkan ICD (nvidia_icd.json) and libvulkan1; " +
  "on a machine without a GPU install libvulkan1 and mesa-vulkan-drivers from bookworm-backports (Mesa >= 25) for lavapipe";

/** No Vulkan adapter that computes: none at all, or only Dawn's null backend. */
export class NoAdapterError extends AbftError {
  constructor(detail: string) {
    super(`no usable WebGPU adapter: ${detail}`, "NO_ADAPTER", HOW_TO_GET_AN_ADAPTER);
  }
}

/** A request for more GPU memory than the adapter allows (or than is free). */
export class GpuOutOfMemoryError extends AbftError {
  constructor(
    readonly requestedBytes: number,
    readonly allowedBytes: number | undefined,
    what: string,
  ) {
    const allowed = allowedBytes === undefined ? "" : `; the adapter allows ${formatBytes(allowedBytes)} per buffer`;
    super(
      `GPU out of memory: ${what} asked for ${formatBytes(requestedBytes)} (${requestedBytes} bytes)${allowed}`,
      "GPU_OOM",
      "use a smaller batch, fewer tokens, or a quantized model (--quant nf4)",
    );
  }
}

/** WGSL that did not compile, reported as kernels/<name>.wgsl:line:col. */
export class KernelCompileError extends AbftError {
  constructor(kernel: string, message: string) {
    super(`kernel ${kernel} failed to compile: ${message}`, "KERNEL_COMPILE");
  }
}

/** A validation or internal error raised by Dawn while running a batch of dispatches. */
export class GpuRuntimeError extends AbftError {
  constructor(message: string) {
    super(message, "GPU_ERROR");
  }
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
