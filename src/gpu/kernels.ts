// Kernel registry: the WGSL files of kernels/, compiled once per device.
//
// Conventions every kernel follows (so that the runtime can build explicit bind-group layouts and
// check every call by name):
//   struct Params { B: u32, eps: f32, ... }                  // optional; scalar u32/i32/f32 fields only
//   @group(0) @binding(0) var<uniform> p: Params;            // always binding 0 when present
//   @group(0) @binding(N) var<storage, read> inp: array<f32>;         // inputs
//   @group(0) @binding(M) var<storage, read_write> out: array<f32>;   // outputs
//   @compute @workgroup_size(...) fn main(...)               // or several entry points: "file:entry"
//   //!include lib/<name>.wgsl                               // shared WGSL from kernels/lib/, pasted in
// (WGSL has no includes; the directive is a comment, so every file stays plain WGSL for editors.)
// The parameter buffer is one shared uniform arena bound with a dynamic offset, so a bind group
// depends only on the storage buffers and can be cached (bun-webgpu leaks per-dispatch objects).
import { readKernelSources } from "./kernel_sources.ts" with { type: "macro" };
import { KernelCompileError } from "./errors.ts";

const SOURCES = new Map<string, string>(Object.entries(readKernelSources()));

export type ScalarType = "u32" | "i32" | "f32";

export interface KernelInfo {
  /** File name without .wgsl, e.g. "matmul_forward". */
  file: string;
  /** the WGSL with every include pasted in */
  source: string;
  /** for each line of `source`: the file and line it came from (for error messages) */
  origin: { file: string; line: number }[];
  /** Params struct fields in declaration order (each 4 bytes). */
  params: { name: string; type: ScalarType }[];
  /** Storage bindings by variable name. */
  storage: Map<string, { binding: number; readOnly: boolean }>;
  entryPoints: string[];
}

const parsed = new Map<string, KernelInfo>();

/** The kernel files (kernels/*.wgsl; kernels/lib/ holds includes, not kernels). */
export function kernelNames(): string[] {
  return [...SOURCES.keys()].filter((n) => !n.startsWith("lib/"));
}

/** Pastes `//!include lib/x.wgsl` lines in (each file once), recording where every line came from. */
function expandIncludes(file: string, source: string): { source: string; origin: KernelInfo["origin"] } {
  const out: string[] = [];
  const origin: KernelInfo["origin"] = [];
  const seen = new Set<string>();
  const walk = (name: string, text: string) => {
    text.split("\n").forEach((line, i) => {
      const m = /^\s*\/\/!include\s+(lib\/[\w-]+)\.wgsl\s*$/.exec(line);
      if (!m) {
        out.push(line);
        origin.push({ file: name, line: i + 1 });
        return;
      }
      const inc = SOURCES.get(m[1]);
      if (inc === undefined) throw new KernelCompileError(file, `kernels/${name}.wgsl:${i + 1}: no file kernels/${m[1]}.wgsl to include`);
      if (seen.has(m[1])) return;
      seen.add(m[1]);
      walk(m[1], inc);
    });
  };
  walk(file, source);
  return { source: out.join("\n"), origin };
}

/** Parses (once) the bindings and Params struct of kernels/<file>.wgsl. */
export function kernelInfo(file: string): KernelInfo {
  let info = parsed.get(file);
  if (info) return info;
  const raw = SOURCES.get(file);
  if (raw === undefined || file.startsWith("lib/")) {
    throw new KernelCompileError(file, `no file kernels/${file}.wgsl (known: ${kernelNames().join(", ")})`);
  }
  const { source, origin } = expandIncludes(file, raw);
  const code = source.replace(/\/\/[^\n]*/g, "");
  const params: KernelInfo["params"] = [];
  const struct = /struct\s+Params\s*\{([^}]*)\}/.exec(code);
  if (struct) {
    for (const m of struct[1].matchAll(/(\w+)\s*:\s*(\w+)/g)) {
      const type = m[2];
      if (type !== "u32" && type !== "i32" && type !== "f32") {
        throw new KernelCompileError(file, `Params field '${m[1]}' has type ${type}; only u32, i32, f32 are allowed`);
      }
      params.push({ name: m[1], type });
    }
  }
  const storage = new Map<string, { binding: number; readOnly: boolean }>();
  const bindingRe = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(\w+)\s*(?:,\s*(\w+)\s*)?>\s*(\w+)/g;
  for (const m of code.matchAll(bindingRe)) {
    const binding = Number(m[1]);
    if (m[2] === "uniform") {
      if (binding !== 0) throw new KernelCompileError(file, "the uniform Params must be binding 0");
      continue;
    }
    if (m[2] !== "storage") throw new KernelCompileError(file, `binding ${binding}: only uniform and storage are supported`);
    storage.set(m[4], { binding, readOnly: (m[3] ?? "read") === "read" });
  }
  const entryPoints = [...code.matchAll(/@compute[^f]*fn\s+(\w+)/g)].map((m) => m[1]);
  info = { file, source, origin, params, storage, entryPoints };
  parsed.set(file, info);
  return info;
}

/** Rewrites Dawn's ":12:5 error: ..." into "kernels/<file>.wgsl:12:5 error: ..." (the line's own file). */
export function locateWgslError(file: string, message: string, origin?: KernelInfo["origin"]): string {
  const lines = message.split("\n").filter((l) => l.trim() !== "" && !l.includes("While calling"));
  const first = lines.findIndex((l) => /:\d+:\d+ error/.test(l));
  const text = first >= 0 ? lines.slice(first, first + 3).join("\n") : lines.join("\n");
  return text
    .replace(/^.*?:(\d+):(\d+) error:/, (_, line: string, col: string) => {
      const o = origin?.[Number(line) - 1] ?? { file, line: Number(line) };
      return `kernels/${o.file}.wgsl:${o.line}:${col} error:`;
    })
    .trim();
}

export interface CompiledKernel {
  id: string;
  info: KernelInfo;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** whether binding 0 is the uniform Params struct (bound from the arena with a dynamic offset) */
  hasParams: boolean;
  /** resolves to an error if Dawn rejected the WGSL or the pipeline */
  checked: Promise<KernelCompileError | null>;
}

/** Compiles "file" or "file:entry" (with optional override constants) once per device. */
export class PipelineCache {
  private readonly cache = new Map<string, CompiledKernel>();
  constructor(private readonly device: GPUDevice) {}

  get(id: string, constants?: Record<string, number>): CompiledKernel {
    const key = constants ? `${id}|${JSON.stringify(constants)}` : id;
    let k = this.cache.get(key);
    if (k) return k;
    const [file, entry = "main"] = id.split(":");
    const info = kernelInfo(file);
    if (!info.entryPoints.includes(entry)) {
      throw new KernelCompileError(file, `no entry point '${entry}' (has: ${info.entryPoints.join(", ")})`);
    }
    const hasParams = info.params.length > 0;
    const entries: GPUBindGroupLayoutEntry[] = [];
    if (hasParams) {
      entries.push({ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true } });
    }
    for (const { binding, readOnly } of info.storage.values()) {
      entries.push({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: readOnly ? "read-only-storage" : "storage" },
      });
    }
    const d = this.device;
    d.pushErrorScope("validation");
    const module = d.createShaderModule({ label: `kernels/${file}.wgsl`, code: info.source });
    const layout = d.createBindGroupLayout({ label: key, entries });
    const pipeline = d.createComputePipeline({
      label: key,
      layout: d.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, ...(constants ? { constants } : {}) },
    });
    const checked = d.popErrorScope().then((e) => (e ? new KernelCompileError(id, locateWgslError(file, e.message, info.origin)) : null));
    k = { id: key, info, pipeline, layout, hasParams, checked };
    this.cache.set(key, k);
    return k;
  }

  /** Compiles now and throws if the WGSL is invalid (for tests and the doctor's self-check). */
  async compile(id: string, constants?: Record<string, number>): Promise<CompiledKernel> {
    const k = this.get(id, constants);
    const err = await k.checked;
    if (err) {
      this.cache.delete(k.id);
      throw err;
    }
    return k;
  }
}

/** Test hook: compile WGSL that is not in kernels/ under a given file name. */
export function registerKernelSourceForTest(file: string, source: string): void {
  SOURCES.set(file, source);
  parsed.delete(file);
}
