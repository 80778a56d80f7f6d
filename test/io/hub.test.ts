// Hub downloads against the local stand-in server (hub_server.ts): the HF cache layout, skipping
// files that are cached (by abft or by Python), resuming cut-off transfers without refetching bytes,
// cache hits with the network gone, offline mode, gated repos, datasets.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadDataset, downloadFile, downloadModel, type DownloadProgress } from "../../src/io/hub.ts";
import { hubEndpoint, hubToken, isOfflineEnv, DEFAULT_ENDPOINT, HubError } from "../../src/io/hub_http.ts";
import { hubCacheDir, repoFolderName } from "../../src/io/hf_cache.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { loadConfig } from "../../src/io/config.ts";
import { loadTokenizer } from "../../src/tokenize/tokenizer.ts";
import { SHARED } from "../helpers.ts";
import { startHubServer, type HubServer } from "./hub_server.ts";

const FX = join(SHARED, "fixtures");
const TOKEN = "hf_test_token_for_the_local_server";
const FAKE_BIN = new Uint8Array(4096).fill(7);

let server: HubServer;
let tmp: string;
const savedEnv = { ...process.env };

function repos() {
  return {
    "test-org/tiny-gpt2": {
      dir: join(FX, "gpt2"),
      files: {
        "tokenizer.json": join(FX, "tokenizers/gpt2/tokenizer.json"),
        "vocab.json": join(FX, "tokenizers/gpt2/vocab.json"),
        "merges.txt": join(FX, "tokenizers/gpt2/merges.txt"),
        "pytorch_model.bin": FAKE_BIN,
        "flax_model.msgpack": FAKE_BIN,
        "onnx/model.onnx": FAKE_BIN,
      },
    },
    "test-org/tiny-llama-sharded": { dir: join(FX, "llama-sharded") },
    "test-org/gated-llama": { dir: join(FX, "llama-bf16"), gated: true },
    "test-org/bin-only": { files: { "config.json": join(FX, "gpt2/config.json"), "pytorch_model.bin": FAKE_BIN } },
    "test-org/dupes": {
      type: "dataset" as const,
      files: {
        "a/part.parquet": new TextEncoder().encode("PAR1 same bytes PAR1"),
        "b/part.parquet": new TextEncoder().encode("PAR1 same bytes PAR1"),
        "empty.parquet": new Uint8Array(0),
      },
    },
    "test-org/tiny-sst2": {
      type: "dataset" as const,
      files: {
        "README.md": new TextEncoder().encode("# tiny\n"),
        "data/train-00000-of-00001.parquet": new TextEncoder().encode("PAR1 train rows PAR1"),
        "data/test-00000-of-00001.parquet": new TextEncoder().encode("PAR1 test rows PAR1"),
      },
    },
  };
}

function freshCache(name: string): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const sha256 = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

async function rejects(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return e as HubError;
  }
  throw new Error("expected a HubError");
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "abft-hub-"));
  server = startHubServer({ repos: repos(), token: TOKEN });
  // the code under test finds the server through HF_ENDPOINT; no token from this machine leaks in
  process.env.HF_ENDPOINT = server.url;
  process.env.HF_HOME = join(tmp, "hf_home");
  delete process.env.HF_TOKEN;
  delete process.env.HUGGING_FACE_HUB_TOKEN;
  delete process.env.HF_TOKEN_PATH;
  delete process.env.HF_HUB_OFFLINE;
  delete process.env.HF_HUB_CACHE;
  delete process.env.HUGGINGFACE_HUB_CACHE;
});

afterAll(() => {
  server.stop();
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
  rmSync(tmp, { recursive: true, force: true });
});

describe("environment", () => {
  test("cache folder: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache", () => {
    expect(hubCacheDir({ HF_HUB_CACHE: "/a", HF_HOME: "/b" })).toBe("/a");
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/old" })).toBe("/old");
    expect(hubCacheDir({ HF_HOME: "/b" })).toBe("/b/hub");
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/hub");
    expect(hubCacheDir({})).toEndWith("/.cache/huggingface/hub");
    expect(repoFolderName("meta-llama/Llama-3.2-1B")).toBe("models--meta-llama--Llama-3.2-1B");
    expect(repoFolderName("stanfordnlp/sst2", "dataset")).toBe("datasets--stanfordnlp--sst2");
  });

  test("endpoint, offline switch and token come from the environment", () => {
    expect(hubEndpoint({})).toBe(DEFAULT_ENDPOINT);
    expect(hubEndpoint({ HF_ENDPOINT: "http://127.0.0.1:9/" })).toBe("http://127.0.0.1:9");
    expect(isOfflineEnv({ HF_HUB_OFFLINE: "1" })).toBe(true);
    expect(isOfflineEnv({ HF_HUB_OFFLINE: "0" })).toBe(false);
    expect(isOfflineEnv({})).toBe(false);
    const home = join(tmp, "token_home");
    mkdirSync(home, { recursive: true });
    expect(hubToken({ HF_HOME: home })).toBeUndefined();
    writeFileSync(join(home, "token"), "hf_from_file\n");
    expect(hubToken({ HF_HOME: home })).toBe("hf_from_file");
    expect(hubToken({ HF_HOME: home, HF_TOKEN: "hf_env" })).toBe("hf_env");
  });
});

describe("downloadModel", () => {
  test("fetches only config, tokenizer files and safetensors into the HF cache layout", async () => {
    const cacheDir = freshCache("c1");
    server.resetStats();
    const events: DownloadProgress[] = [];
    const r = await downloadModel("test-org/tiny-gpt2", { cacheDir, onProgress: (p) => events.push(p) });
    const commit = server.commitOf("test-org/tiny-gpt2");
    const repoDir = join(cacheDir, "models--test-org--tiny-gpt2");
    expect(r.commit).toBe(commit);
    expect(r.dir).toBe(join(repoDir, "snapshots", commit));
    expect(r.fromCache).toBe(false);
    expect(r.files).toEqual(["config.json", "merges.txt", "model.safetensors", "tokenizer.json", "vocab.json"]);
    expect(readFileSync(join(repoDir, "refs", "main"), "utf8")).toBe(commit);

    // nothing else was asked for: no .bin / .msgpack / onnx, no reference.* files
    const fetched = server.requests.filter((q) => q.method === "GET" || q.method === "HEAD").map((q) => q.path);
    for (const p of fetched) expect(p).not.toMatch(/pytorch_model|msgpack|onnx|reference/);
    expect(server.bytesServed.get("test-org/tiny-gpt2/pytorch_model.bin")).toBeUndefined();

    // snapshot entries are relative symlinks to blobs named by the hub's etag: the sha256 from
    // X-Linked-Etag for LFS files (not the CDN's own ETag), the git blob sha1 for the others
    const link = join(r.dir, "model.safetensors");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(`../../blobs/${sha256(join(FX, "gpt2/model.safetensors"))}`);
    const cfg = readFileSync(join(FX, "gpt2/config.json"));
    const gitSha = createHash("sha1").update(`blob ${cfg.length}\0`).update(cfg).digest("hex");
    expect(readlinkSync(join(r.dir, "config.json"))).toBe(`../../blobs/${gitSha}`);
    expect(Buffer.compare(readFileSync(link), readFileSync(join(FX, "gpt2/model.safetensors")))).toBe(0);
    expect(existsSync(join(repoDir, "blobs", `${sha256(join(FX, "gpt2/model.safetensors"))}.incomplete`))).toBe(false);

    // progress: every file ends with a done report at its full size
    for (const f of r.files) {
      const last = events.filter((e) => e.file === f).at(-1)!;
      expect(last.done).toBe(true);
      expect(last.downloaded).toBe(statSync(join(r.dir, f)).size);
      expect(last.cached).toBe(false);
    }

    // and the folder loads
    expect(loadConfig(r.dir).modelType).toBe("gpt2");
    expect(Checkpoint.open(r.dir).names().length).toBeGreaterThan(0);
    expect(loadTokenizer(r.dir).encode("hello world").ids).toEqual([31373, 995]);

    // a second call fetches no file content and reports every file as cached
    server.resetStats();
    const again: DownloadProgress[] = [];
    const r2 = await downloadModel("test-org/tiny-gpt2", { cacheDir, onProgress: (p) => again.push(p) });
    expect(r2.dir).toBe(r.dir);
    expect(r2.fromCache).toBe(true);
    expect(server.totalBytesServed()).toBe(0);
    expect(server.requests.every((q) => q.path.startsWith("/api/"))).toBe(true);
    expect(again.length).toBe(r.files.length);
    expect(again.every((e) => e.cached && e.done)).toBe(true);
  });

  test("sharded checkpoint: the index and every shard it names, and nothing else", async () => {
    const cacheDir = freshCache("c2");
    const r = await downloadModel("test-org/tiny-llama-sharded", { cacheDir });
    const shards = Array.from({ length: 14 }, (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-00014.safetensors`);
    expect(r.files).toEqual(["config.json", ...shards, "model.safetensors.index.json"].sort());
    const ck = Checkpoint.open(r.dir);
    expect(ck.files.length).toBe(14);
    const ref = Checkpoint.open(join(FX, "llama-sharded"));
    for (const n of ref.names()) expect(Buffer.compare(ck.bytes(n), ref.bytes(n))).toBe(0);
  });

  for (const mode of ["close", "reset"] as const) {
    test(`a transfer cut off midway (${mode}) resumes with a Range request: no byte is served twice`, async () => {
      const cacheDir = freshCache(`c3-${mode}`);
      const shard = "model-00001-of-00014.safetensors";
      const size = statSync(join(FX, "llama-sharded", shard)).size;
      server.resetStats();
      server.cut("test-org/tiny-llama-sharded", shard, 50_000, mode);
      const r = await downloadModel("test-org/tiny-llama-sharded", { cacheDir });
      expect(server.bytesServed.get(`test-org/tiny-llama-sharded/${shard}`)).toBe(size);
      const ranged = server.requests.filter((q) => q.path.startsWith("/cdn/") && q.range !== null);
      expect(ranged.map((q) => q.range)).toEqual(["bytes=50000-"]);
      expect(ranged[0].status).toBe(206);
      expect(Buffer.compare(readFileSync(join(r.dir, shard)), readFileSync(join(FX, "llama-sharded", shard)))).toBe(0);
    });
  }

  test("an interrupted download leaves a .incomplete blob that the next run continues", async () => {
    const cacheDir = freshCache("c4");
    const file = "model.safetensors";
    const src = join(FX, "gpt2", file);
    const size = statSync(src).size;
    const blob = join(cacheDir, "models--test-org--tiny-gpt2", "blobs", sha256(src));
    server.cut("test-org/tiny-gpt2", file, 300_000);
    const err = await rejects(downloadModel("test-org/tiny-gpt2", { cacheDir, retries: 0 }));
    expect(err.code).toBe("INTERRUPTED");
    expect(err.message).toContain("stopped at");
    expect(err.hint).toContain("resumes");
    expect(statSync(`${blob}.incomplete`).size).toBe(300_000);
    expect(existsSync(blob)).toBe(false);

    server.resetStats();
    const events: DownloadProgress[] = [];
    const r = await downloadModel("test-org/tiny-gpt2", { cacheDir, onProgress: (p) => events.push(p) });
    expect(server.bytesServed.get(`test-org/tiny-gpt2/${file}`)).toBe(size - 300_000);
    // this file's transfer (a late request of an earlier test may also be in the log)
    expect(server.requests.find((q) => q.path === `/cdn/${sha256(src)}`)!.range).toBe("bytes=300000-");
    expect(events.find((e) => e.file === file)!.downloaded).toBe(300_000); // the bar starts where it stopped
    expect(Buffer.compare(readFileSync(join(r.dir, file)), readFileSync(src))).toBe(0);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
  });

  test("blobs already cached (e.g. by Python's huggingface_hub) are linked, not fetched", async () => {
    const cacheDir = freshCache("c5");
    const repoDir = join(cacheDir, "models--test-org--tiny-gpt2");
    const src = join(FX, "gpt2/model.safetensors");
    mkdirSync(join(repoDir, "blobs"), { recursive: true });
    copyFileSync(src, join(repoDir, "blobs", sha256(src)));
    server.resetStats();
    const r = await downloadModel("test-org/tiny-gpt2", { cacheDir });
    expect(server.bytesServed.get("test-org/tiny-gpt2/model.safetensors")).toBeUndefined();
    expect(readlinkSync(join(r.dir, "model.safetensors"))).toBe(`../../blobs/${sha256(src)}`);

    // a complete Python-made snapshot at another revision name: read through refs, nothing fetched
    const commit = server.commitOf("test-org/tiny-gpt2");
    mkdirSync(join(repoDir, "refs"), { recursive: true });
    writeFileSync(join(repoDir, "refs", "v1.0"), commit);
    const off = await downloadModel("test-org/tiny-gpt2", { cacheDir, revision: "v1.0", offline: true });
    expect(off.dir).toBe(r.dir);
    expect(off.fromCache).toBe(true);
  });

  test("with the network gone, a cached model is served from the cache; an uncached one is a clear error", async () => {
    const own = startHubServer({ repos: { "test-org/tiny-gpt2": repos()["test-org/tiny-gpt2"] } });
    const cacheDir = freshCache("c6");
    const r = await downloadModel("test-org/tiny-gpt2", { cacheDir, endpoint: own.url });
    own.stop();
    const again = await downloadModel("test-org/tiny-gpt2", { cacheDir, endpoint: own.url });
    expect(again.dir).toBe(r.dir);
    expect(again.fromCache).toBe(true);
    expect(again.files).toEqual(r.files);
    const byCommit = await downloadModel("test-org/tiny-gpt2", { cacheDir, endpoint: own.url, revision: r.commit });
    expect(byCommit.dir).toBe(r.dir);
    const err = await rejects(downloadModel("test-org/tiny-llama-sharded", { cacheDir, endpoint: own.url }));
    expect(err.code).toBe("NETWORK");
    expect(err.message).toContain("not in the cache");
  });

  test("offline mode (HF_HUB_OFFLINE=1) uses only the cache and says so when the model is absent", async () => {
    const cacheDir = freshCache("c7");
    await downloadModel("test-org/tiny-gpt2", { cacheDir });
    server.resetStats();
    process.env.HF_HUB_OFFLINE = "1";
    try {
      const r = await downloadModel("test-org/tiny-gpt2", { cacheDir });
      expect(r.fromCache).toBe(true);
      expect(loadConfig(r.dir).nLayers).toBe(3);
      const err = await rejects(downloadModel("test-org/tiny-llama-sharded", { cacheDir }));
      expect(err.code).toBe("OFFLINE_MISS");
      expect(err.message).toContain("HF_HUB_OFFLINE");
      expect(err.message).toContain("test-org/tiny-llama-sharded");
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(server.requests.length).toBe(0);
  });

  test("HF_HUB_CACHE places the cache when no cacheDir is given", async () => {
    const cacheDir = freshCache("c8");
    process.env.HF_HUB_CACHE = cacheDir;
    try {
      const r = await downloadModel("test-org/tiny-gpt2");
      expect(r.dir.startsWith(join(cacheDir, "models--test-org--tiny-gpt2", "snapshots"))).toBe(true);
    } finally {
      delete process.env.HF_HUB_CACHE;
    }
  });

  test("a gated repo without a token says to set HF_TOKEN and accept the licence; with the token it downloads", async () => {
    const cacheDir = freshCache("c9");
    const err = await rejects(downloadModel("test-org/gated-llama", { cacheDir }));
    expect(err.code).toBe("GATED");
    expect(err.message).toContain("HTTP 401");
    expect(err.message).toContain("HF_TOKEN");
    expect(err.message).toContain("licence");
    expect(err.message).toContain(`${server.url}/test-org/gated-llama`);

    const wrong = await rejects(downloadModel("test-org/gated-llama", { cacheDir, token: "hf_wrong" }));
    expect(wrong.code).toBe("GATED");
    expect(wrong.message).toContain("HTTP 403");

    server.resetStats();
    process.env.HF_TOKEN = TOKEN;
    try {
      const r = await downloadModel("test-org/gated-llama", { cacheDir });
      expect(loadConfig(r.dir).dtype).toBe("bfloat16");
    } finally {
      delete process.env.HF_TOKEN;
    }
    // the token goes to the hub, never to the CDN
    expect(server.requests.filter((q) => q.path.includes("/resolve/")).every((q) => q.auth)).toBe(true);
    expect(server.requests.filter((q) => q.path.startsWith("/cdn/")).every((q) => !q.auth)).toBe(true);
  });

  test("unknown repos, bin-only repos and bad ids are clear errors", async () => {
    const cacheDir = freshCache("c10");
    const nf = await rejects(downloadModel("test-org/no-such-model", { cacheDir }));
    expect(nf.code).toBe("REPO_NOT_FOUND");
    expect(nf.message).toContain("test-org/no-such-model");
    const rev = await rejects(downloadModel("test-org/tiny-gpt2", { cacheDir, revision: "no-such-branch" }));
    expect(rev.code).toBe("REVISION_NOT_FOUND");
    const bin = await rejects(downloadModel("test-org/bin-only", { cacheDir }));
    expect(bin.code).toBe("NO_SAFETENSORS");
    expect(bin.message).toContain("pytorch_model.bin");
    const bad = await rejects(downloadModel("../etc/passwd", { cacheDir }));
    expect(bad.code).toBe("BAD_REPO_ID");
  });
});

describe("downloadFile and downloadDataset", () => {
  test("one file; a missing one is ENTRY_NOT_FOUND and is remembered as absent", async () => {
    const cacheDir = freshCache("c11");
    const p = await downloadFile("test-org/tiny-gpt2", "config.json", { cacheDir });
    expect(JSON.parse(readFileSync(p, "utf8")).model_type).toBe("gpt2");
    const err = await rejects(downloadFile("test-org/tiny-gpt2", "generation_config.json", { cacheDir }));
    expect(err.code).toBe("ENTRY_NOT_FOUND");
    const commit = server.commitOf("test-org/tiny-gpt2");
    expect(existsSync(join(cacheDir, "models--test-org--tiny-gpt2", ".no_exist", commit, "generation_config.json"))).toBe(true);
  });

  test("a dataset's Parquet files go to datasets--org--name, nested paths included", async () => {
    const cacheDir = freshCache("c12");
    const r = await downloadDataset("test-org/tiny-sst2", { cacheDir });
    expect(r.repoType).toBe("dataset");
    expect(r.dir).toContain(join(cacheDir, "datasets--test-org--tiny-sst2", "snapshots"));
    expect(r.files).toEqual(["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]);
    const train = join(r.dir, "data/train-00000-of-00001.parquet");
    expect(readlinkSync(train)).toStartWith("../../../blobs/");
    expect(readFileSync(train, "utf8")).toBe("PAR1 train rows PAR1");
    const only = await downloadDataset("test-org/tiny-sst2", { cacheDir, include: ["data/train-*"], offline: true });
    expect(only.files).toEqual(["data/train-00000-of-00001.parquet"]);
    const none = await rejects(downloadDataset("test-org/tiny-sst2", { cacheDir, include: ["*.csv"] }));
    expect(none.code).toBe("NO_PARQUET");
  });

  test("two paths with the same content share one blob and one transfer; empty files work", async () => {
    const cacheDir = freshCache("c14");
    server.resetStats();
    const r = await downloadDataset("test-org/dupes", { cacheDir, concurrency: 3 });
    expect(r.files).toEqual(["a/part.parquet", "b/part.parquet", "empty.parquet"]);
    expect(readlinkSync(join(r.dir, "a/part.parquet"))).toBe(readlinkSync(join(r.dir, "b/part.parquet")));
    expect(readFileSync(join(r.dir, "b/part.parquet"), "utf8")).toBe("PAR1 same bytes PAR1");
    expect(server.totalBytesServed()).toBe(20); // the shared content once, the empty file without a GET
    expect(statSync(join(r.dir, "empty.parquet")).size).toBe(0);
  });

  test("a snapshot link whose blob was deleted is fetched again", async () => {
    const cacheDir = freshCache("c13");
    const r = await downloadModel("test-org/tiny-gpt2", { cacheDir });
    const link = join(r.dir, "config.json");
    rmSync(join(r.dir, readlinkSync(link)));
    const r2 = await downloadModel("test-org/tiny-gpt2", { cacheDir });
    expect(JSON.parse(readFileSync(join(r2.dir, "config.json"), "utf8")).n_layer).toBe(3);
    // and a symlink made by hand (as Python makes them) is followed
    const other = join(tmp, "manual_link");
    symlinkSync(join(r2.dir, "config.json"), other);
    expect(statSync(other).isFile()).toBe(true);
  });
});
