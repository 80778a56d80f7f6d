// The on-disk cache of quantized models (issue #7): a model loaded with --quant nf4|nf4dq|int8 has its
// quantized weights written, once, beside the HF cache; the next load with the same model, revision
// and format uploads them as they are and never reads (or quantizes) the original tensors.
//
// Layout:
//   <root>/                          $ABFT_QUANT_CACHE, else <hub cache>/../abft-quantized
//                                    (~/.cache/huggingface/abft-quantized by default; "off" disables)
//     models--<org>--<name>/<commit>/<format>.safetensors          a hub model at a snapshot commit
//     local--<folder>--<path hash>/<content hash>/<format>.safetensors   a local model folder
//   path hash:    sha256 of the folder's real absolute path, 12 hex digits
//   content hash: sha256 of config.json and, for every *.safetensors / *.safetensors.index.json
//                 file, its name, size and mtime: 16 hex digits. Editing the weights changes it;
//                 when a new entry is written the folder's older content hashes are deleted.
// File: safetensors (src/io/safetensors.ts), one U32 tensor [words] per quantized weight, named as
//   the model names the weight, holding its GPU buffer word for word (codes, block scales and nf4dq
//   groups: src/ops/quant.ts); __metadata__: abft_quant_cache (the layout version), model, revision,
//   format, and shapes (JSON: name → [N, K]). Written under a temporary name and renamed, only after
//   the whole model loaded; a load that had to quantize weights the file lacked (say, W_Q/W_K of a
//   LoRA run) writes it again with every weight, old and new.
// A file that cannot be read (truncated, bad header), that belongs to another key or layout
// version, or whose weights do not have the shapes the model expects is ignored with a one-line
// warning and written anew.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { QuantStore } from "../../models/weights.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { quantLayout, type QuantFormat } from "../ops/quant.ts";
import { numel, weight, type Tensor } from "../tensor/tensor.ts";
import { hubCacheDir, repoFolderName } from "./hf_cache.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { AtomicFile, safetensorsHead } from "./safetensors_writer.ts";

/** The layout version: a file written by another layout is stale. */
export const QUANT_CACHE_VERSION = "1";

type Env = Record<string, string | undefined>;

/** The cache's root folder, or null when ABFT_QUANT_CACHE is "off". */
export function quantCacheRoot(env: Env = process.env): string | null {
  const v = env.ABFT_QUANT_CACHE;
  if (v && /^(off|none|0|false)$/i.test(v)) return null;
  return v || join(dirname(hubCacheDir(env)), "abft-quantized");
}

/** What a cache entry is for. */
export interface QuantCacheKey {
  /** hub repo id, or the local folder's real path */
  model: string;
  /** hub commit, or the local folder's content hash */
  revision: string;
  format: QuantFormat;
  /** the entry's folder relative to the root: <model folder>/<revision> */
  folder: string;
}

/** Where a model comes from (as src/io/model_source.ts resolves it). */
export interface CacheSource {
  dir: string;
  repoId?: string;
  /** the hub commit */
  revision?: string;
}

const sha256 = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

/** The key of a model source: (repo id, commit) from the hub, (path, content hash) for a local folder. */
export function quantCacheKey(src: CacheSource, format: QuantFormat): QuantCacheKey {
  if (src.repoId && src.revision && /^[0-9a-f]{40}$/.test(src.revision)) {
    return { model: src.repoId, revision: src.revision, format, folder: join(repoFolderName(src.repoId), src.revision) };
  }
  const real = realpathSync(src.dir);
  const name = basename(real).replace(/[^\w.-]/g, "_") || "model";
  const revision = folderContentHash(real);
  return { model: real, revision, format, folder: join(`local--${name}--${sha256(real).slice(0, 12)}`, revision) };
}

/** sha256 of config.json plus the names, sizes and mtimes of the weight files: 16 hex digits. */
export function folderContentHash(dir: string): string {
  const h = createHash("sha256");
  h.update(readFileSync(join(dir, "config.json")));
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(".safetensors") && !f.endsWith(".safetensors.index.json")) continue;
    const st = statSync(join(dir, f));
    h.update(`\n${f}\t${st.size}\t${st.mtimeMs}`);
  }
  return h.digest("hex").slice(0, 16);
}

export function quantCachePath(root: string, key: QuantCacheKey): string {
  return join(root, key.folder, `${key.format}.safetensors`);
}

/** A weight of a cache file: its shape and the words of its buffer. */
interface Entry {
  shape: number[];
  words: number;
}

/** A cache file opened and checked against its key (mapped: tensors are views). */
export class QuantCacheFile {
  private constructor(
    private readonly file: SafetensorsFile,
    readonly entries: Map<string, Entry>,
  ) {}

  /** The file at `path` if it is sound and made for `key`; else the problem in a few words. */
  static open(path: string, key: QuantCacheKey): QuantCacheFile | string {
    let file: SafetensorsFile;
    try {
      file = SafetensorsFile.open(path);
    } catch (e) {
      return (e as Error).message.replace(`${path}: `, "");
    }
    const m = file.metadata;
    const problem = (what: string) => {
      file.close();
      return what;
    };
    if (m.abft_quant_cache !== QUANT_CACHE_VERSION) return problem(`layout version ${m.abft_quant_cache ?? "none"}, expected ${QUANT_CACHE_VERSION}`);
    for (const k of ["model", "revision", "format"] as const) {
      if (m[k] !== key[k]) return problem(`it was made for ${k} ${m[k] ?? "(none)"}, not ${key[k]}`);
    }
    let shapes: Record<string, number[]>;
    try {
      shapes = JSON.parse(m.shapes ?? "");
    } catch {
      return problem("its shapes metadata is not JSON");
    }
    const entries = new Map<string, Entry>();
    let end = 0;
    for (const [name, info] of file.tensors) {
      const shape = shapes[name];
      if (!Array.isArray(shape) || shape.length !== 2) return problem(`no shape for ${name}`);
      const words = quantLayout(numel(shape), key.format).words;
      if (info.dtype !== "U32" || info.numel !== words) return problem(`${name} holds ${info.numel} ${info.dtype} values, [${shape}] in ${key.format} needs ${words} U32`);
      entries.set(name, { shape, words });
      end = Math.max(end, info.byteOffset + info.byteLength);
    }
    const size = statSync(path).size;
    if (size !== end) return problem(`the file has ${size} bytes, its header accounts for ${end}`);
    return new QuantCacheFile(file, entries);
  }

  /** the words of a weight: a view of the mapping */
  bytes(name: string): Uint8Array {
    return this.file.bytes(name);
  }

  close(): void {
    this.file.close();
  }
}

/** A weight to write: name, shape, and its buffer's bytes (read when its turn comes). */
export interface CacheWrite {
  name: string;
  shape: readonly number[];
  bytes: number;
  read(): Promise<Uint8Array>;
}

/**
 * Writes a cache file: header first (every size is known), then each weight as read() gives it, so
 * the host holds one weight at a time. Temporary file + rename: the final name only ever names a
 * complete file. Returns the bytes written.
 */
export async function writeQuantCache(path: string, key: QuantCacheKey, weights: CacheWrite[]): Promise<number> {
  const shapes: Record<string, readonly number[]> = {};
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const w of weights) {
    const words = quantLayout(numel(w.shape), key.format).words;
    if (w.bytes !== words * 4) throw new Error(`quantized cache: ${w.name} has ${w.bytes} bytes, [${w.shape}] in ${key.format} needs ${words * 4}`);
    header[w.name] = { dtype: "U32", shape: [words], data_offsets: [offset, offset + w.bytes] };
    shapes[w.name] = w.shape;
    offset += w.bytes;
  }
  header.__metadata__ = {
    abft_quant_cache: QUANT_CACHE_VERSION, model: key.model, revision: key.revision, format: key.format, shapes: JSON.stringify(shapes),
  };
  const head = safetensorsHead(header); // data 8-byte aligned
  mkdirSync(dirname(path), { recursive: true });
  const file = AtomicFile.create(path);
  try {
    file.write(head);
    for (const w of weights) {
      const b = await w.read();
      if (b.byteLength !== w.bytes) throw new Error(`quantized cache: ${w.name} gave ${b.byteLength} bytes, expected ${w.bytes}`);
      file.write(b);
    }
  } catch (e) {
    file.abort();
    throw e;
  }
  file.commit(true);
  return head.length + offset;
}


/** Deletes the other content hashes of a local folder's entry (they can never match again). */
function pruneLocalRevisions(root: string, key: QuantCacheKey): void {
  if (!key.folder.startsWith("local--")) return;
  const parent = join(root, dirname(key.folder));
  for (const d of readdirSync(parent)) {
    if (d !== key.revision && /^[0-9a-f]{16}$/.test(d)) rmSync(join(parent, d), { recursive: true, force: true });
  }
}

/**
 * The cache as the loaders see it (models/weights.ts QuantStore): weights are taken from the file
 * when it holds them, and every quantized weight of the model is remembered so that save() can
 * write the file once the model has loaded.
 */
export class QuantCache implements QuantStore {
  readonly path: string;
  private file: QuantCacheFile | null = null;
  /** why the file on disk is not used (null: it is, or there is none) */
  problem: string | null = null;
  private readonly held = new Map<string, Tensor>();
  /** weights taken from the file, and quantized by the loader */
  hits = 0;
  misses = 0;

  constructor(
    private readonly rt: Runtime,
    readonly root: string,
    readonly key: QuantCacheKey,
    private readonly warn: (line: string) => void,
  ) {
    this.path = quantCachePath(root, key);
    if (!existsSync(this.path)) return;
    const f = QuantCacheFile.open(this.path, key);
    if (typeof f === "string") {
      this.problem = f;
      this.warn(`abft: warning: ignoring the quantized-weight cache ${this.path} (${f}); it will be written again`);
    } else this.file = f;
  }

  take(name: string, shape: readonly number[], format: QuantFormat): Tensor | null {
    const e = this.file?.entries.get(name);
    if (!this.file || !e || format !== this.key.format) return null;
    if (e.shape.join(",") !== shape.join(",")) {
      // made for this key, yet not this model's shapes: use none of it
      this.problem = `${name} is [${e.shape}] there, the model expects [${shape}]`;
      this.warn(`abft: warning: ignoring the quantized-weight cache ${this.path} (${this.problem}); it will be written again`);
      this.file.close();
      this.file = null;
      return null;
    }
    const t = weight(this.rt, this.file.bytes(name), shape, format, name);
    this.held.set(name, t);
    this.hits++;
    return t;
  }

  put(name: string, t: Tensor): void {
    this.held.set(name, t);
    this.misses++;
  }

  /** Whether save() will write: a weight was quantized now, or the file was unusable. */
  get dirty(): boolean {
    return this.misses > 0 || this.problem !== null;
  }

  /**
   * Writes the file when dirty: every weight held (read back from the GPU) and the file's other
   * weights (kept, so that loads with and without LoRA share one file). Returns the bytes written
   * (0: nothing to write).
   */
  async save(): Promise<number> {
    if (!this.dirty) return 0;
    const weights: CacheWrite[] = [];
    for (const [name, t] of this.held) {
      const bytes = quantLayout(t.size, this.key.format).words * 4;
      weights.push({ name, shape: t.shape, bytes, read: async () => new Uint8Array(await this.rt.read(t.buf, bytes)) });
    }
    for (const [name, e] of this.file?.entries ?? []) {
      if (this.held.has(name)) continue;
      const file = this.file!;
      weights.push({ name, shape: e.shape, bytes: e.words * 4, read: async () => file.bytes(name) });
    }
    const n = await writeQuantCache(this.path, this.key, weights);
    pruneLocalRevisions(this.root, this.key);
    return n;
  }

  close(): void {
    this.file?.close();
    this.file = null;
    this.held.clear();
  }
}
