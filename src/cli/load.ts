// Shared by the commands: resolve --model (with download progress), build it on the GPU (through
// the on-disk cache of quantized weights, src/io/quant_cache.ts), apply a run directory's trained
// tensors, and parse numeric options with one-line errors.
import { InvalidArgumentError } from "commander";
import { applyTrained, trainedLoadOptions } from "../abft/run_dir.ts";
import { formatBytes } from "../gpu/errors.ts";
import { getRuntime, type Runtime } from "../gpu/runtime.ts";
import type { ModelConfig } from "../io/config.ts";
import { QuantCache, quantCacheKey, quantCacheRoot, type CacheSource } from "../io/quant_cache.ts";
import { Checkpoint } from "../io/safetensors.ts";
import { resolveModel, type ModelSource } from "../io/model_source.ts";
import { buildModel } from "../../models/registry.ts";
import type { LanguageModel } from "../../models/common.ts";
import { quantFormatFor, type LoadOptions, type TensorSource } from "../../models/weights.ts";
import { progress, say, type Progress } from "./progress.ts";

export async function resolveWithProgress(spec: string, revision?: string): Promise<ModelSource> {
  const bars = new Map<string, Progress>();
  const src = await resolveModel(spec, {
    revision,
    onProgress: (p) => {
      if (p.cached) return;
      let bar = bars.get(p.file);
      if (!bar) bars.set(p.file, (bar = progress(`download ${p.file}`, Math.max(p.total, 1), "bytes")));
      bar.update(p.downloaded);
      if (p.done) bar.stop();
    },
  });
  return src;
}

export interface OpenOptions extends LoadOptions {
  /**
   * Keep the quantized weights on disk and load them from there next time (src/io/quant_cache.ts).
   * Default: on for hub models (a snapshot commit never changes), off for local folders.
   */
  quantCache?: boolean;
  /** the cache's root folder (default: quantCacheRoot(), from the environment) */
  quantCacheRoot?: string;
}

export async function openModel(src: ModelSource, opts: OpenOptions = {}): Promise<LanguageModel> {
  const rt = await getRuntime();
  const ckpt = Checkpoint.open(src.dir);
  try {
    const model = await buildModelCached(rt, src, ckpt, src.trainedFile ? { ...trainedLoadOptions(src.trainedFile), ...opts } : opts);
    if (src.trainedFile) {
      applyTrained(model, src.trainedFile);
      say(`abft: loaded the trained W_Q/W_K of ${src.runDir}`);
    }
    return model;
  } finally {
    ckpt.close();
  }
}

/**
 * buildModel, through the on-disk cache of quantized weights when the options quantize and the cache
 * is on: the weights the cache holds are uploaded from it (their checkpoint tensors are never read),
 * the others are quantized and, once the whole model has loaded, the cache file is written. A cache
 * that cannot be read or written costs a one-line warning, never the load.
 */
export async function buildModelCached(
  rt: Runtime, src: CacheSource & { config: ModelConfig }, ckpt: TensorSource, opts: OpenOptions = {}, log: (line: string) => void = say,
): Promise<LanguageModel> {
  const format = quantFormatFor(opts);
  const root = opts.quantCacheRoot ?? quantCacheRoot();
  const on = opts.quantCache ?? !!(src.repoId && src.revision);
  if (!format || !on || !root) return buildModel(rt, src.config, ckpt, opts);
  let cache: QuantCache;
  try {
    cache = new QuantCache(rt, root, quantCacheKey(src, format), log);
  } catch (e) {
    log(`abft: warning: no quantized-weight cache for ${src.dir} (${(e as Error).message})`);
    return buildModel(rt, src.config, ckpt, opts);
  }
  try {
    const model = buildModel(rt, src.config, ckpt, { ...opts, quantStore: cache });
    if (cache.hits) log(`abft: ${cache.hits} ${format} weights from the cache ${cache.path}`);
    try {
      const bytes = await cache.save();
      if (bytes) log(`abft: wrote ${cache.hits + cache.misses} ${format} weights (${formatBytes(bytes)}) to the cache ${cache.path}`);
    } catch (e) {
      log(`abft: warning: could not write the quantized-weight cache ${cache.path}: ${(e as Error).message}`);
    }
    return model;
  } finally {
    cache.close();
  }
}

export function intOption(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function floatOption(name: string, min = -Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number${min > -Infinity ? ` >= ${min}` : ""}, got '${v}'`);
    return n;
  };
}
