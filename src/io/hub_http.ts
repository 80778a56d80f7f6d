// The HTTP side of the hub client (hub.ts decides what to fetch and where it goes in the cache):
// the endpoint and token from the environment, requests, redirects, the hub's errors as one-line
// HubErrors, and transfers that resume a .incomplete blob with Range requests.
//
// The HTTP protocol is the one Python's huggingface_hub speaks (file_download.py):
//   GET  {endpoint}/api/{models|datasets}/{repo}/revision/{rev}    → {sha, siblings: [{rfilename}]}
//   HEAD {endpoint}/[datasets/]{repo}/resolve/{commit}/{path}       (redirects not followed, except
//        relative ones, e.g. a renamed repo) → X-Repo-Commit; X-Linked-Etag or ETag (the blob name);
//        X-Linked-Size or Content-Length; for LFS files a 302 whose Location is the CDN URL
//   GET  the CDN URL (or the resolve URL), with Range: bytes=<n>- to resume a .incomplete blob
// The token (HF_TOKEN) goes only to hub URLs, never to the (signed) CDN link of a redirect.
import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { AbftError, formatBytes } from "../gpu/errors.ts";
import { COMMIT_RE, hfHome, type RepoType } from "./hf_cache.ts";

/** The hub's address unless HF_ENDPOINT says otherwise. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

type Env = Record<string, string | undefined>;

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

// ---------------------------------------------------------------------------------------------
// HTTP

/** What the HTTP layer needs of a download: the repo, the hub, the token and the retry count. */
export interface HttpCtx {
  repoId: string;
  repoType: RepoType;
  endpoint: string;
  token: string | undefined;
  retries: number;
  /** set once bytes were requested from the network */
  fetched: boolean;
}

/** fetch itself failed (no answer from the server): a download falls back to the cache where it can. */
export class NetworkError extends Error {}

export interface RepoInfo {
  sha: string;
  siblings: string[];
}

const enc = (s: string) => encodeURIComponent(s);
const encPath = (p: string) => p.split("/").map(enc).join("/");

function authHeaders(ctx: HttpCtx): Record<string, string> {
  return ctx.token ? { Authorization: `Bearer ${ctx.token}` } : {};
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new NetworkError((e as Error).message.split("\n")[0]);
  }
}

export async function repoInfo(ctx: HttpCtx, revision: string): Promise<RepoInfo> {
  const url = `${ctx.endpoint}/api/${ctx.repoType}s/${ctx.repoId}/revision/${enc(revision)}`;
  const res = await request(url, { headers: authHeaders(ctx) });
  if (!res.ok) throw await httpError(ctx, res, revision);
  const body = (await res.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof body.sha !== "string" || !COMMIT_RE.test(body.sha) || !Array.isArray(body.siblings)) {
    throw new HubError(`${url}: unexpected answer (no sha / siblings)`, "BAD_RESPONSE");
  }
  return { sha: body.sha, siblings: body.siblings.map((s) => String(s.rfilename)) };
}

function modelPage(ctx: HttpCtx): string {
  return `${ctx.endpoint}/${ctx.repoType === "dataset" ? "datasets/" : ""}${ctx.repoId}`;
}

async function httpError(ctx: HttpCtx, res: Response, revision: string, path?: string): Promise<HubError> {
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

export interface FileMeta {
  commit: string | null;
  etag: string;
  size: number | null;
  /** where the bytes are: the CDN location for LFS files, else the resolve URL */
  url: string;
  /** url came from an absolute redirect (a signed CDN link): the token is not sent there */
  redirected: boolean;
}

/** HEAD of the resolve URL, following relative redirects only (huggingface_hub get_hf_file_metadata). */
export async function fileMeta(ctx: HttpCtx, commit: string, path: string): Promise<FileMeta | null> {
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

/** Streams meta.url into blob.incomplete (resuming what is there with a Range request), then renames it. */
export async function transfer(
  ctx: HttpCtx,
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
