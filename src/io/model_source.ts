// Resolves what a user passes as --model: a local HF model folder, a hub repo id (downloaded into
// the HF cache, or found there), or an abft run directory (its base model plus the trained tensors).
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { AbftError } from "../gpu/errors.ts";
import { loadConfig, type ModelConfig } from "./config.ts";
import { downloadModel, type DownloadProgress } from "./hub.ts";
import { loadTokenizer, type TextTokenizer } from "../tokenize/tokenizer.ts";

export interface ModelSource {
  /** what the user typed */
  spec: string;
  /** the folder holding config.json, the tokenizer and the weights */
  dir: string;
  /** hub repo id and commit, when it came from the hub */
  repoId?: string;
  revision?: string;
  /** the trained tensors of a run directory */
  trainedFile?: string;
  runDir?: string;
  config: ModelConfig;
}

export interface ResolveOptions {
  revision?: string;
  onProgress?: (p: DownloadProgress) => void;
}

function isRunDir(dir: string): boolean {
  return existsSync(join(dir, "abft.safetensors")) && existsSync(join(dir, "config.json")) && !existsSync(join(dir, "model.safetensors"));
}

export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<ModelSource> {
  const local = resolve(spec);
  if (existsSync(local) && statSync(local).isDirectory()) {
    if (isRunDir(local)) {
      const run = JSON.parse(readFileSync(join(local, "config.json"), "utf8")) as { model?: string; revision?: string; model_source?: { repoId?: string; dir?: string; revision?: string } };
      const base = run.model_source?.dir && existsSync(run.model_source.dir) ? run.model_source.dir : run.model;
      if (!base) throw new AbftError(`${join(local, "config.json")} names no base model`, "BAD_RUN_DIR");
      const src = await resolveModel(base, { ...opts, revision: run.model_source?.revision ?? opts.revision });
      return { ...src, spec, trainedFile: join(local, "abft.safetensors"), runDir: local };
    }
    if (!existsSync(join(local, "config.json"))) {
      throw new AbftError(`--model ${spec}: the folder has no config.json (not a Hugging Face model folder or abft run directory)`, "BAD_MODEL");
    }
    return { spec, dir: local, config: loadConfig(local) };
  }
  const looksLikePath = /^(\.{1,2}|~)?\//.test(spec) || spec.split("/").length > 2 || spec.startsWith(".");
  if (looksLikePath || !/^[\w.-]+(\/[\w.-]+)?$/.test(spec)) {
    throw new AbftError(`--model ${spec}: no such folder, and not a hub repo id like 'openai-community/gpt2-large'`, "BAD_MODEL");
  }
  const res = await downloadModel(spec, { revision: opts.revision, onProgress: opts.onProgress });
  return { spec, dir: res.dir, repoId: spec, revision: res.commit, config: loadConfig(res.dir) };
}

export function tokenizerFor(src: ModelSource): TextTokenizer {
  return loadTokenizer(src.dir, { bosTokenId: src.config.bosTokenId });
}
