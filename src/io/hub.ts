// Downloads from the Hugging Face hub into the standard HF cache (layout in hf_cache.ts).
//
// The HTTP protocol is the one Python's huggingface_hub speaks (file_download.py):
//   GET  {endpoint}/api/{models|datasets}/{repo}/revision/{rev}    → {sha, siblings: [{rfilename}]}
//   HEAD {endpoint}/[datasets/]{repo}/resolve/{commit}/{path}       (redirects not followed, except
//        relative ones, e.g. a renamed repo) → X-Repo-Commit; X-Linked-Etag or ETag (the blob name);
//        X-Linked-Size or Content-Length; for LFS files a 302 whose Location is the CDN URL
//   GET  the CDN URL (or the resolve URL), with Range: bytes=<n>- to resume a .incomplete blob
// The token (HF_TOKEN) goes only to hub URLs, never to the (signed) CDN link of a redirect.
//
// Why not @huggingface/hub's downloadFileToCacheDir / snapshotDownload: they do not resume partial
// downloads (the .incomplete blob is rewritten from byte 0), report no progress, have no offline
// mode, and snapshotDownload fetches every file of the repo (.bin, .pth, onnx/ ...). The protocol
// above is small, so abft speaks it with fetch directly.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AbftError, formatBytes } from "../gpu/errors.ts";
import {
  COMMIT_RE,
  blobPath,
  cachedFile,
  hfHome,
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

/** The hub's address unless HF_ENDPOINT says otherwise. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

type Env = Record<string, string | undefined>;

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

export class HubError extends AbftError {
  constructor(message: string, code: string, hint?: string) {
    super(message, code, hint);
  }
}

// ---------------------------------------------------------------------------------------------
// Environment

export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

export function isOfflineEnv(env: Env = process.env): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env.HF_HUB_OFFLINE ?? "").toUpperCase());
}

/** HF_TOKEN, else the older HUGGING_FACE_HUB_TOKEN, else the token file ($HF_TOKEN_PATH or $HF_HOME/token). */
export function hubToken(env: Env = process.env): string | undefined {
  const t = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (t) return t.trim();
  const file = env.HF_TOKEN_PATH || join(hfHome(env), "token");
  try {
    const s = readFileSync(file, "utf8").trim();
    return s || undefined;
  } catch {
    return undefined;
  }
}

interface Ctx {
  repoId: string;
  repoType: RepoType;
  endpoint: string;
  token: string | undefined;
  repoDir: string;
  onProgress?: (p: DownloadProgress) => void;
  retries: number;
  fetched: boolean;
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
// HTTP

class NetworkError extends Error {}

interface RepoInfo {
  sha: string;
  siblings: string[];
}

const enc = (s: string) => encodeURIComponent(s);
const encPath = (p: string) => p.split("/").map(enc).join("/");

function authHeaders(ctx: Ctx): Record<string, string> {
  return ctx.token ? { Authorization: `Bearer ${ctx.token}` } : {};
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new NetworkError((e as Error).message.split("\n")[0]);
  }
}

async function repoInfo(ctx: Ctx, revision: string): Promise<RepoInfo> {
  const url = `${ctx.endpoint}/api/${ctx.repoType}s/${ctx.repoId}/revision/${enc(revision)}`;
  const res = await request(url, { headers: authHeaders(ctx) });
  if (!res.ok) throw await httpError(ctx, res, revision);
  const body = (await res.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof body.sha !== "string" || !COMMIT_RE.test(body.sha) || !Array.isArray(body.siblings)) {
    throw new HubError(`${url}: unexpected answer (no sha / siblings)`, "BAD_RESPONSE");
  }
  return { sha: body.sha, siblings: body.siblings.map((s) => String(s.rfilename)) };
}

function modelPage(ctx: Ctx): string {
  return `${ctx.endpoint}/${ctx.repoType === "dataset" ? "datasets/" : ""}${ctx.repoId}`;
}

async function httpError(ctx: Ctx, res: Response, revision: string, path?: string): Promise<HubError> {
  const code = res.headers.get("X-Error-Code") ?? "";
  const serverMsg = res.headers.get("X-Error-Message") ?? "";
  try {
    await res.body?.cancel();
  } catch {}
  const what = `${ctx.repoType} ${ctx.repoId}${path ? ` (${path})` : ""}`;
  const said = serverMsg ? `: ${serverMsg}` : "";
  if (code === "RepoNotFound" || (res.status === 404 && !code)) {
    return new HubError(
      `${what} was not found on ${ctx.endpoint} (HTTP ${res.status})${said}`,
      "REPO_NOT_FOUND",
      ctx.token ? "check the repo id" : "check the repo id; if the repo is private, set HF_TOKEN to a token that can read it",
    );
  }
  if (code === "RevisionNotFound") return new HubError(`${what}: revision ${revision} not found (HTTP ${res.status})${said}`, "REVISION_NOT_FOUND");
  if (code === "EntryNotFound") return new HubError(`${what}: no such file at revision ${revision}`, "ENTRY_NOT_FOUND");
  if (res.status === 401 || res.status === 403) {
    const hint = ctx.token
      ? `the token in use cannot read it: accept the licence on ${modelPage(ctx)} with that token's account, or set HF_TOKEN to another token`
      : `set HF_TOKEN to a read token from ${ctx.endpoint}/settings/tokens, after accepting the licence on ${modelPage(ctx)}`;
    return new HubError(
      `access to ${what} was refused (HTTP ${res.status}): it is gated or private${ctx.token ? "" : " and no token is set"}; set HF_TOKEN (and accept the licence on ${modelPage(ctx)})`,
      "GATED",
      hint,
    );
  }
  return new HubError(`${what}: HTTP ${res.status} from ${res.url || ctx.endpoint}${said}`, "HTTP");
}

interface FileMeta {
  commit: string | null;
  etag: string;
  size: number | null;
  /** where the bytes are: the CDN location for LFS files, else the resolve URL */
  url: string;
  /** url came from an absolute redirect (a signed CDN link): the token is not sent there */
  redirected: boolean;
}

/** HEAD of the resolve URL, following relative redirects only (huggingface_hub get_hf_file_metadata). */
async function fileMeta(ctx: Ctx, commit: string, path: string): Promise<FileMeta | null> {
  const prefix = ctx.repoType === "dataset" ? "datasets/" : "";
  let url = `${ctx.endpoint}/${prefix}${ctx.repoId}/resolve/${commit}/${encPath(path)}`;
  for (let hop = 0; hop < 10; hop++) {
    const res = await request(url, {
      method: "HEAD",
      redirect: "manual",
      headers: { ...authHeaders(ctx), "Accept-Encoding": "identity" },
    });
    const loc = res.headers.get("Location");
    if (res.status >= 300 && res.status < 400 && loc && !/^[a-z][a-z0-9+.-]*:/i.test(loc)) {
      url = new URL(loc, url).href; // relative: a renamed repo, still the hub
      continue;
    }
    if (res.status === 404 && res.headers.get("X-Error-Code") === "EntryNotFound") return null;
    if (!(res.ok || (res.status >= 300 && res.status < 400))) throw await httpError(ctx, res, commit, path);
    const etagRaw = res.headers.get("X-Linked-Etag") ?? res.headers.get("ETag");
    if (!etagRaw) throw new HubError(`${url}: the hub sent no ETag, so the file cannot be cached`, "BAD_RESPONSE");
    const sizeRaw = res.headers.get("X-Linked-Size") ?? res.headers.get("Content-Length");
    return {
      commit: res.headers.get("X-Repo-Commit"),
      etag: etagRaw.replace(/^W\//, "").replace(/"/g, ""),
      size: sizeRaw !== null && /^\d+$/.test(sizeRaw) ? Number(sizeRaw) : null,
      url: loc ? new URL(loc, url).href : url,
      redirected: loc !== null,
    };
  }
  throw new HubError(`${url}: too many redirects`, "HTTP");
}

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

/** Streams meta.url into blob.incomplete (resuming what is there with a Range request), then renames it. */
async function transfer(
  ctx: Ctx,
  meta: FileMeta,
  blob: string,
  path: string,
  report: (got: number, total: number, done: boolean) => void,
): Promise<void> {
  const part = `${blob}.incomplete`;
  let failures = 0;
  let lastError = "";
  for (;;) {
    let have = existsSync(part) ? statSync(part).size : 0;
    if (meta.size !== null && have > meta.size) {
      unlinkSync(part); // longer than the file: not ours
      have = 0;
    }
    let total = meta.size ?? 0;
    report(have, total, false);
    if (meta.size !== null && have === meta.size) break;
    const headers: Record<string, string> = { "Accept-Encoding": "identity", ...(meta.redirected ? {} : authHeaders(ctx)) };
    if (have > 0) headers.Range = `bytes=${have}-`;
    let res: Response;
    try {
      res = await request(meta.url, { headers });
      ctx.fetched = true;
    } catch (e) {
      if (++failures > ctx.retries) {
        throw new HubError(`download of ${ctx.repoId} file ${path} failed: ${(e as Error).message}`, "NETWORK", "run the same command again: it resumes");
      }
      await Bun.sleep(Math.min(200 * 2 ** failures, 5000));
      continue;
    }
    if (res.status === 416 && have > 0) {
      await res.body?.cancel();
      unlinkSync(part); // the server cannot serve from here: start over
      continue;
    }
    if (!res.ok && meta.redirected) {
      await res.body?.cancel();
      throw new HubError(`the download link of ${ctx.repoId} file ${path} answered HTTP ${res.status}`, "HTTP", "run the same command again (links expire): it resumes");
    }
    if (!res.ok) throw await httpError(ctx, res, "", path);
    let start = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)/.exec(res.headers.get("Content-Range") ?? "");
      start = m ? Number(m[1]) : have;
      if (m && m[2] !== "*") total = Number(m[2]);
      if (start !== have) {
        await res.body?.cancel();
        throw new HubError(`${meta.url}: asked for bytes from ${have} but got a range from ${start}`, "BAD_RESPONSE");
      }
    } else {
      const len = res.headers.get("Content-Length");
      if (len !== null && meta.size === null) total = Number(len);
    }
    const fh = await open(part, start > 0 ? "a" : "w");
    let got = start;
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await fh.write(value);
        got += value.length;
        report(got, total, false);
      }
    } catch (e) {
      lastError = (e as Error).message.split("\n")[0];
    } finally {
      await fh.close();
    }
    if (!total || got >= total) {
      if (total && got > total) throw new HubError(`${meta.url}: got ${got} bytes, more than the ${total} announced`, "BAD_RESPONSE");
      break;
    }
    // cut off: resume from what is on disk (a transfer that made progress does not use up a retry)
    if (got > have) failures = 0;
    if (++failures > ctx.retries) {
      throw new HubError(
        `download of ${ctx.repoId} file ${path} stopped at ${formatBytes(got)} of ${formatBytes(total)}${lastError ? ` (${lastError})` : ""}`,
        "INTERRUPTED",
        "run the same command again: it resumes from the bytes already downloaded",
      );
    }
  }
  if (!existsSync(part)) writeFileSync(part, new Uint8Array(0)); // an empty file
  const size = statSync(part).size;
  renameSync(part, blob);
  report(size, size, true);
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
