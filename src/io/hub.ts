// Downloads from the Hugging Face hub into the standard HF cache (layout in hf_cache.ts): which
// files of a model or dataset repo to fetch, the cache and offline fallbacks, and the writes into
// blobs/ and snapshots/. The HTTP side (requests, redirects, resumed transfers, errors, the
// endpoint and token) is in hub_http.ts.
//
// Why not @huggingface/hub's downloadFileToCacheDir / snapshotDownload: they do not resume partial
// downloads (the .incomplete blob is rewritten from byte 0), report no progress, have no offline
// mode, and snapshotDownload fetches every file of the repo (.bin, .pth, onnx/ ...). The protocol
// above is small, so abft speaks it with fetch directly.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  COMMIT_RE,
  blobPath,
  cachedFile,
  hubCacheDir,
  isNoExist,
  linkSnapshotFile,
  listSnapshot,
  markNoExist,
  readRef,
  repoCacheDir,
  snapshotDir,
  writeRef,
  type RepoType,
} from "./hf_cache.ts";
import { fileMeta, hubEndpoint, HubError, hubToken, isOfflineEnv, NetworkError, repoInfo, transfer, type FileMeta, type HttpCtx, type RepoInfo } from "./hub_http.ts";

/** One progress report for one file (the CLI draws one bar per file). */
export interface DownloadProgress {
  repoId: string;
  /** path in the repo */
  file: string;
  /** bytes on disk so far (a resumed download starts above 0) */
  downloaded: number;
  /** the file's size; 0 while unknown */
  total: number;
  /** the file was already in the cache: nothing is fetched */
  cached: boolean;
  /** the last report for this file */
  done: boolean;
}

export interface DownloadOptions {
  /** branch, tag or commit hash (default "main") */
  revision?: string;
  /** the hub cache folder (default: hubCacheDir(): HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub) */
  cacheDir?: string;
  /** access token (default: HF_TOKEN, else the token file that `hf auth login` writes) */
  token?: string;
  /** use only the cache (default: HF_HUB_OFFLINE=1) */
  offline?: boolean;
  /** the hub's address (default: HF_ENDPOINT, else DEFAULT_ENDPOINT) */
  endpoint?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** files fetched at once (default 4) */
  concurrency?: number;
  /** how often a cut-off transfer is resumed before giving up (default 5) */
  retries?: number;
}

export interface DatasetDownloadOptions extends DownloadOptions {
  /** globs over repo paths ("*" within a folder, "**" across folders); default: every Parquet file */
  include?: string[];
}

export interface DownloadResult {
  repoId: string;
  repoType: RepoType;
  revision: string;
  commit: string;
  /** snapshots/<commit>: the folder to load from */
  dir: string;
  /** the repo paths that are in `dir` for this request, sorted */
  files: string[];
  /** true when nothing was fetched from the network (everything was cached, or offline) */
  fromCache: boolean;
}

interface Ctx extends HttpCtx {
  repoDir: string;
  onProgress?: (p: DownloadProgress) => void;
  /** blobs being downloaded now, so that two paths with the same content share one transfer */
  inflight: Map<string, Promise<void>>;
}

function context(repoId: string, repoType: RepoType, opts: DownloadOptions): Ctx {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.includes("..")) {
    throw new HubError(`"${repoId}" is not a hub repo id (expected org/name)`, "BAD_REPO_ID");
  }
  const cacheDir = opts.cacheDir ?? hubCacheDir();
  return {
    repoId,
    repoType,
    endpoint: (opts.endpoint ?? hubEndpoint()).replace(/\/+$/, ""),
    token: opts.token ?? hubToken(),
    repoDir: repoCacheDir(cacheDir, repoId, repoType),
    onProgress: opts.onProgress,
    retries: opts.retries ?? 5,
    fetched: false,
    inflight: new Map(),
  };
}

// ---------------------------------------------------------------------------------------------
// Models

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json"];
const MODEL_OPTIONAL = ["generation_config.json", ...TOKENIZER_FILES];
const INDEX = "model.safetensors.index.json";

/**
 * Downloads what abft needs of a model repo: config.json, generation_config.json and the tokenizer
 * files when present, and the safetensors weights (the shards of model.safetensors.index.json, or
 * model.safetensors, or the root *.safetensors). Never .bin / .pth / .msgpack / .h5 / onnx.
 * Returns the snapshot folder. Files already in the cache (from abft or Python) are not fetched.
 */
export async function downloadModel(repoId: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const ctx = context(repoId, "model", opts);
  const revision = opts.revision ?? "main";
  const offline = opts.offline ?? isOfflineEnv();

  const fromCache = () => {
    const commit = readRef(ctx.repoDir, revision);
    if (!commit) return null;
    const files = cachedModelFiles(ctx.repoDir, commit);
    return files ? result(ctx, revision, commit, files, true) : null;
  };
  if (offline) {
    const r = fromCache();
    if (r) return r;
    throw offlineMiss(ctx, revision);
  }
  if (COMMIT_RE.test(revision)) {
    const r = fromCache();
    if (r) return r; // a commit never changes: no need to ask the hub
  }

  let info: RepoInfo;
  try {
    info = await repoInfo(ctx, revision);
  } catch (e) {
    if (e instanceof NetworkError) {
      const r = fromCache();
      if (r) return r;
      throw new HubError(
        `cannot reach ${ctx.endpoint} (${e.message}) and ${repoId} (revision ${revision}) is not in the cache at ${ctx.repoDir}`,
        "NETWORK",
        "check the network, or set HF_ENDPOINT to a mirror",
      );
    }
    throw e;
  }
  const commit = info.sha;
  writeRef(ctx.repoDir, revision, commit);
  const present = new Set(info.siblings);
  if (!present.has("config.json")) {
    throw new HubError(`${repoId} has no config.json at revision ${revision}: it is not a transformers model repo`, "NOT_A_MODEL");
  }
  const files = ["config.json", ...MODEL_OPTIONAL.filter((f) => present.has(f))];
  let weights: string[];
  if (present.has(INDEX)) {
    await fetchFiles(ctx, commit, [INDEX], opts.concurrency);
    weights = shardsOf(join(snapshotDir(ctx.repoDir, commit), INDEX));
    const missing = weights.filter((w) => !present.has(w));
    if (missing.length) throw new HubError(`${repoId}: ${INDEX} names shards that the repo lacks: ${missing.join(", ")}`, "MISSING_SHARD");
    files.push(INDEX);
  } else if (present.has("model.safetensors")) {
    weights = ["model.safetensors"];
  } else {
    weights = info.siblings.filter((f) => !f.includes("/") && f.endsWith(".safetensors"));
  }
  if (weights.length === 0) {
    const other = info.siblings.filter((f) => /\.(bin|pth|pt|ckpt|msgpack|h5|gguf)$/.test(f));
    throw new HubError(
      `${repoId} has no safetensors weights${other.length ? ` (it has ${other.slice(0, 4).join(", ")})` : ""}`,
      "NO_SAFETENSORS",
      "abft reads safetensors only: pick a repo with .safetensors files, or convert the weights with transformers' save_pretrained(safe_serialization=True)",
    );
  }
  files.push(...weights);
  await fetchFiles(ctx, commit, files.filter((f) => f !== INDEX), opts.concurrency);
  return result(ctx, revision, commit, files, !ctx.fetched);
}

/** The model files of a cached snapshot, or null when config.json or a weight file is missing. */
function cachedModelFiles(repoDir: string, commit: string): string[] | null {
  const all = listSnapshot(repoDir, commit);
  const have = new Set(all);
  if (!have.has("config.json")) return null;
  let weights: string[];
  if (have.has(INDEX)) {
    try {
      weights = [INDEX, ...shardsOf(join(snapshotDir(repoDir, commit), INDEX))];
    } catch {
      return null;
    }
  } else if (have.has("model.safetensors")) {
    weights = ["model.safetensors"];
  } else {
    weights = all.filter((f) => !f.includes("/") && f.endsWith(".safetensors"));
  }
  if (weights.length === 0 || !weights.every((w) => have.has(w))) return null;
  return ["config.json", ...MODEL_OPTIONAL.filter((f) => have.has(f)), ...weights];
}

function shardsOf(indexPath: string): string[] {
  let wm: Record<string, string>;
  try {
    wm = JSON.parse(readFileSync(indexPath, "utf8")).weight_map;
  } catch (e) {
    throw new HubError(`${indexPath}: not a valid safetensors index (${(e as Error).message})`, "BAD_INDEX");
  }
  if (!wm || typeof wm !== "object") throw new HubError(`${indexPath}: no weight_map`, "BAD_INDEX");
  const shards = [...new Set(Object.values(wm))].sort();
  for (const s of shards) {
    if (typeof s !== "string" || s.includes("..") || s.startsWith("/")) throw new HubError(`${indexPath}: bad shard name ${JSON.stringify(s)}`, "BAD_INDEX");
  }
  return shards;
}

// ---------------------------------------------------------------------------------------------
// Datasets

/**
 * Downloads a dataset repo's Parquet files (or the files matching `include`) into the same cache
 * (datasets--org--name). For datasets without Parquet files, the hub's converted copies are on
 * revision "refs/convert/parquet".
 */
export async function downloadDataset(repoId: string, opts: DatasetDownloadOptions = {}): Promise<DownloadResult> {
  const ctx = context(repoId, "dataset", opts);
  const revision = opts.revision ?? "main";
  const offline = opts.offline ?? isOfflineEnv();
  const patterns = (opts.include ?? ["**.parquet"]).map(globToRegExp);
  const wanted = (f: string) => patterns.some((p) => p.test(f));

  const fromCache = () => {
    const commit = readRef(ctx.repoDir, revision);
    if (!commit) return null;
    const files = listSnapshot(ctx.repoDir, commit).filter(wanted);
    return files.length ? result(ctx, revision, commit, files, true) : null;
  };
  if (offline || COMMIT_RE.test(revision)) {
    const r = fromCache();
    if (r) return r;
    if (offline) throw offlineMiss(ctx, revision);
  }
  let info: RepoInfo;
  try {
    info = await repoInfo(ctx, revision);
  } catch (e) {
    if (e instanceof NetworkError) {
      const r = fromCache();
      if (r) return r;
      throw new HubError(`cannot reach ${ctx.endpoint} (${e.message}) and dataset ${repoId} is not in the cache at ${ctx.repoDir}`, "NETWORK");
    }
    throw e;
  }
  writeRef(ctx.repoDir, revision, info.sha);
  const files = info.siblings.filter(wanted);
  if (files.length === 0) {
    throw new HubError(
      `dataset ${repoId} has no files matching ${(opts.include ?? ["**.parquet"]).join(", ")} at revision ${revision}`,
      "NO_PARQUET",
      revision === "main" ? 'the hub keeps Parquet conversions on revision "refs/convert/parquet": try --revision refs/convert/parquet' : undefined,
    );
  }
  await fetchFiles(ctx, info.sha, files, opts.concurrency);
  return result(ctx, revision, info.sha, files, !ctx.fetched);
}

/** "*" matches within a folder, "**" across folders, "?" one character. */
function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

// ---------------------------------------------------------------------------------------------
// Single files

/**
 * One file of a repo into the cache (huggingface_hub's hf_hub_download): returns its snapshot path.
 * A file the repo lacks is an error with code ENTRY_NOT_FOUND.
 */
export async function downloadFile(
  repoId: string,
  path: string,
  opts: DownloadOptions & { repoType?: RepoType } = {},
): Promise<string> {
  const ctx = context(repoId, opts.repoType ?? "model", opts);
  const revision = opts.revision ?? "main";
  const cached = () => {
    const commit = readRef(ctx.repoDir, revision);
    return commit ? cachedFile(ctx.repoDir, commit, path) : null;
  };
  if ((opts.offline ?? isOfflineEnv()) || COMMIT_RE.test(revision)) {
    const p = cached();
    if (p) return p;
    if (opts.offline ?? isOfflineEnv()) throw offlineMiss(ctx, revision, path);
  }
  let commit: string;
  try {
    commit = (await repoInfo(ctx, revision)).sha;
  } catch (e) {
    const p = e instanceof NetworkError ? cached() : null;
    if (p) return p;
    throw e;
  }
  writeRef(ctx.repoDir, revision, commit);
  await fetchFiles(ctx, commit, [path], 1);
  return join(snapshotDir(ctx.repoDir, commit), path);
}

// ---------------------------------------------------------------------------------------------
// Fetching into the cache

/** Fetches files into the cache (skipping those already there), `concurrency` at a time. */
async function fetchFiles(ctx: Ctx, commit: string, paths: string[], concurrency = 4): Promise<void> {
  const queue = [...paths];
  const worker = async () => {
    for (let p = queue.shift(); p !== undefined; p = queue.shift()) await fetchOne(ctx, commit, p);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, paths.length)) }, worker));
}

async function fetchOne(ctx: Ctx, commit: string, path: string): Promise<void> {
  const report = (downloaded: number, total: number, cached: boolean, done: boolean) =>
    ctx.onProgress?.({ repoId: ctx.repoId, file: path, downloaded, total, cached, done });
  const have = cachedFile(ctx.repoDir, commit, path);
  if (have) {
    const n = statSync(have).size;
    report(n, n, true, true);
    return;
  }
  if (isNoExist(ctx.repoDir, commit, path)) throw new HubError(`${ctx.repoId}: ${path} does not exist at ${commit}`, "ENTRY_NOT_FOUND");
  let meta: FileMeta | null;
  try {
    meta = await fileMeta(ctx, commit, path);
  } catch (e) {
    if (e instanceof NetworkError) throw new HubError(`cannot reach ${ctx.endpoint} to fetch ${ctx.repoId}/${path}: ${e.message}`, "NETWORK");
    throw e;
  }
  if (!meta) {
    markNoExist(ctx.repoDir, commit, path);
    throw new HubError(`${ctx.repoId}: ${path} does not exist at ${commit}`, "ENTRY_NOT_FOUND");
  }
  const blob = blobPath(ctx.repoDir, meta.etag);
  if (existsSync(blob)) {
    // another revision, or a Python download, already has these bytes
    linkSnapshotFile(ctx.repoDir, commit, path, meta.etag);
    const n = statSync(blob).size;
    report(n, n, true, true);
    return;
  }
  mkdirSync(dirname(blob), { recursive: true });
  const shared = ctx.inflight.get(blob);
  if (shared) {
    await shared; // another path with the same content is being fetched: link to its blob
    linkSnapshotFile(ctx.repoDir, commit, path, meta.etag);
    const n = statSync(blob).size;
    report(n, n, true, true);
    return;
  }
  const job = transfer(ctx, meta, blob, path, (got, total, done) => report(got, total, false, done));
  ctx.inflight.set(blob, job);
  try {
    await job;
  } finally {
    ctx.inflight.delete(blob);
  }
  linkSnapshotFile(ctx.repoDir, commit, path, meta.etag);
}

// ---------------------------------------------------------------------------------------------

function offlineMiss(ctx: Ctx, revision: string, path?: string): HubError {
  return new HubError(
    `offline mode (HF_HUB_OFFLINE) and ${ctx.repoType} ${ctx.repoId}${path ? ` file ${path}` : ""} (revision ${revision}) is not complete in the cache at ${ctx.repoDir}`,
    "OFFLINE_MISS",
    `unset HF_HUB_OFFLINE and run \`abft pull ${ctx.repoId}\` once with network access`,
  );
}

function result(ctx: Ctx, revision: string, commit: string, files: string[], fromCache: boolean): DownloadResult {
  return {
    repoId: ctx.repoId,
    repoType: ctx.repoType,
    revision,
    commit,
    dir: snapshotDir(ctx.repoDir, commit),
    files: [...new Set(files)].sort(),
    fromCache,
  };
}
