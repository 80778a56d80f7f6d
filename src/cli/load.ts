// Shared by the commands: resolve --model (with download progress), build it on the GPU, apply a
// run directory's trained tensors, and parse numeric options with one-line errors.
import { InvalidArgumentError } from "commander";
import { applyTrained, trainedLoadOptions } from "../abft/run_dir.ts";
import { getRuntime } from "../gpu/runtime.ts";
import { Checkpoint } from "../io/safetensors.ts";
import { resolveModel, type ModelSource } from "../io/model_source.ts";
import { buildModel } from "../../models/registry.ts";
import type { LanguageModel, LoadOptions } from "../../models/common.ts";
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

export async function openModel(src: ModelSource, opts: LoadOptions = {}): Promise<LanguageModel> {
  const rt = await getRuntime();
  const ckpt = Checkpoint.open(src.dir);
  try {
    const model = buildModel(rt, src.config, ckpt, src.trainedFile ? { ...trainedLoadOptions(src.trainedFile), ...opts } : opts);
    if (src.trainedFile) {
      applyTrained(model, src.trainedFile);
      say(`abft: loaded the trained W_Q/W_K of ${src.runDir}`);
    }
    return model;
  } finally {
    ckpt.close();
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
