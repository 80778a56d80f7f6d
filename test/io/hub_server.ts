// A local stand-in for the Hugging Face hub (Bun.serve on 127.0.0.1, random port) for the download
// tests. It serves folders (e.g. ../shared/fixtures/gpt2) in the hub's URL layout:
//   GET  /api/models/{repo}/revision/{rev}            {id, sha, siblings: [{rfilename}], gated, private}
//   GET  /api/datasets/{repo}/revision/{rev}
//   HEAD|GET /{repo}/resolve/{rev}/{path}             (datasets: /datasets/{repo}/resolve/...)
//        small files: 200 with ETag "<git blob sha1>", X-Repo-Commit, Content-Length, Range support
//        LFS files (*.safetensors, *.parquet, *.bin, or larger than lfsThreshold): 302 to
//        /cdn/{sha256} (an absolute URL, as the hub's CDN links are) with X-Linked-Etag "<sha256>",
//        X-Linked-Size, X-Repo-Commit
//   HEAD|GET /cdn/{sha256}                            the bytes, with its own different ETag and Range
//                                                     support (206, Content-Range; 416 past the end)
// Errors as the hub sends them: X-Error-Code RepoNotFound (401 without a token), RevisionNotFound,
// EntryNotFound (404), GatedRepo (401 without a token, 403 with a wrong one).
// Switches: cut(path, n) makes the next transfer of that file stop after n bytes (the connection
// closes early); stats count requests and content bytes served per file.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";

export interface RepoSpec {
  /** a folder whose files (recursively) are the repo's files */
  dir?: string;
  /** more files: repo path → local file path, or the content itself */
  files?: Record<string, string | Uint8Array>;
  type?: "model" | "dataset";
  /** files are refused without the server's token (401) or with another token (403) */
  gated?: boolean;
}

export interface ServedRequest {
  method: string;
  path: string;
  range: string | null;
  auth: boolean;
  status: number;
}

export interface HubServer {
  url: string;
  /** every request, in order */
  requests: ServedRequest[];
  /** content bytes sent, by "repo/path" */
  bytesServed: Map<string, number>;
  totalBytesServed(): number;
  /** the commit hash the server reports for a repo */
  commitOf(repoId: string): string;
  /**
   * The next GET that transfers repoId's `path` sends only `afterBytes` bytes of its body, then
   * ends the body early ("close": a short body) or resets the connection ("reset").
   */
  cut(repoId: string, path: string, afterBytes: number, mode?: "close" | "reset"): void;
  resetStats(): void;
  stop(): void;
}

interface ServedFile {
  repo: string;
  path: string;
  bytes: Uint8Array;
  gitSha: string;
  sha256: string;
  lfs: boolean;
}

interface Repo {
  id: string;
  type: "model" | "dataset";
  gated: boolean;
  commit: string;
  files: Map<string, ServedFile>;
}

export function startHubServer(opts: { repos: Record<string, RepoSpec>; token?: string; lfsThreshold?: number }): HubServer {
  const lfsThreshold = opts.lfsThreshold ?? 1 << 20;
  const repos = new Map<string, Repo>();
  const byHash = new Map<string, ServedFile>();
  for (const [id, spec] of Object.entries(opts.repos)) {
    const type = spec.type ?? "model";
    const files = new Map<string, ServedFile>();
    const add = (path: string, bytes: Uint8Array) => {
      const gitSha = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      const lfs = /\.(safetensors|parquet|bin|pth|h5|msgpack)$/.test(path) || bytes.length >= lfsThreshold;
      const f = { repo: id, path, bytes, gitSha, sha256, lfs };
      files.set(path, f);
      byHash.set(sha256, f);
    };
    if (spec.dir) for (const p of walk(spec.dir)) add(relative(spec.dir, p).split(sep).join("/"), readFileSync(p));
    for (const [path, src] of Object.entries(spec.files ?? {})) add(path, typeof src === "string" ? readFileSync(src) : src);
    const h = createHash("sha1").update(`${type}:${id}`);
    for (const f of [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) h.update(`${f.path}:${f.gitSha}\n`);
    repos.set(`${type}:${id}`, { id, type, gated: spec.gated ?? false, commit: h.digest("hex"), files });
  }

  const requests: ServedRequest[] = [];
  const bytesServed = new Map<string, number>();
  const cuts = new Map<string, { at: number; mode: "close" | "reset" }>();

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      const auth = req.headers.get("Authorization");
      const res = route(req, url, auth);
      requests.push({ method: req.method, path: url.pathname, range: req.headers.get("Range"), auth: auth !== null, status: res.status });
      return res;
    },
  });
  const base = `http://127.0.0.1:${server.port}`;

  function route(req: Request, url: URL, auth: string | null): Response {
    const p = decodeURIComponent(url.pathname);
    let m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(p);
    if (m && req.method === "GET") {
      const repo = repos.get(`${m[1].slice(0, -1)}:${m[2]}`);
      if (!repo) return hubError(401, "RepoNotFound", "Repository not found");
      if (m[3] !== "main" && m[3] !== repo.commit) return hubError(404, "RevisionNotFound", `Invalid rev id: ${m[3]}`);
      return Response.json({
        id: repo.id,
        sha: repo.commit,
        private: false,
        gated: repo.gated ? "manual" : false,
        siblings: [...repo.files.keys()].sort().map((rfilename) => ({ rfilename })),
      });
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(p);
    if (m) {
      const f = byHash.get(m[1]);
      if (!f) return new Response("not found", { status: 404 });
      return serveBytes(req, f, { ETag: `"cdn-${f.sha256.slice(0, 16)}"` });
    }
    m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    if (m && (req.method === "GET" || req.method === "HEAD")) {
      const repo = repos.get(`${m[1] ? "dataset" : "model"}:${m[2]}`);
      if (!repo) return hubError(401, "RepoNotFound", "Repository not found");
      if (m[3] !== "main" && m[3] !== repo.commit) return hubError(404, "RevisionNotFound", `Invalid rev id: ${m[3]}`);
      if (repo.gated) {
        if (!auth) return hubError(401, "GatedRepo", `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
        if (auth !== `Bearer ${opts.token}`) return hubError(403, "GatedRepo", `Access to model ${repo.id} is restricted and you are not in the authorized list.`);
      }
      const f = repo.files.get(m[4]);
      if (!f) return hubError(404, "EntryNotFound", `${m[4]} does not exist on "${m[3]}"`);
      const common = { "X-Repo-Commit": repo.commit };
      if (f.lfs) {
        return new Response(null, {
          status: 302,
          headers: {
            ...common,
            Location: `${base}/cdn/${f.sha256}`,
            "X-Linked-Etag": `"${f.sha256}"`,
            "X-Linked-Size": String(f.bytes.length),
            ETag: `"${f.gitSha}"`,
          },
        });
      }
      return serveBytes(req, f, { ...common, ETag: `"${f.gitSha}"` });
    }
    return new Response("not found", { status: 404 });
  }

  function serveBytes(req: Request, f: ServedFile, headers: Record<string, string>): Response {
    const size = f.bytes.length;
    let start = 0;
    let end = size; // exclusive
    let status = 200;
    const range = req.headers.get("Range");
    if (range) {
      const r = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!r || Number(r[1]) >= size) {
        return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${size}` } });
      }
      start = Number(r[1]);
      end = r[2] ? Math.min(size, Number(r[2]) + 1) : size;
      status = 206;
      headers = { ...headers, "Content-Range": `bytes ${start}-${end - 1}/${size}` };
    }
    headers = { ...headers, "Accept-Ranges": "bytes", "Content-Length": String(end - start), "Content-Type": "application/octet-stream" };
    if (req.method === "HEAD") return new Response(null, { status, headers });
    const key = `${f.repo}/${f.path}`;
    const body = f.bytes.subarray(start, end);
    const cut = cuts.get(key);
    if (cut === undefined) {
      bytesServed.set(key, (bytesServed.get(key) ?? 0) + body.length);
      return new Response(body, { status, headers });
    }
    cuts.delete(key);
    const first = body.subarray(0, Math.min(cut.at, body.length));
    bytesServed.set(key, (bytesServed.get(key) ?? 0) + first.length);
    let step = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (step++ === 0) c.enqueue(first);
        else {
          await Bun.sleep(30); // let the first part reach the client, then end short of Content-Length
          if (cut.mode === "close") c.close();
          else c.error(undefined);
        }
      },
    });
    return new Response(stream, { status, headers });
  }

  return {
    url: base,
    requests,
    bytesServed,
    totalBytesServed: () => [...bytesServed.values()].reduce((a, b) => a + b, 0),
    commitOf: (repoId: string) => (repos.get(`model:${repoId}`) ?? repos.get(`dataset:${repoId}`))!.commit,
    cut: (repoId: string, path: string, afterBytes: number, mode: "close" | "reset" = "close") =>
      void cuts.set(`${repoId}/${path}`, { at: afterBytes, mode }),
    resetStats: () => {
      requests.length = 0;
      bytesServed.clear();
    },
    stop: () => server.stop(true),
  };
}

function hubError(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { "X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json" },
  });
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
