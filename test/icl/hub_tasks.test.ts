// Task data from hub datasets (src/icl/hub_tasks.ts) against the local hub stand-in
// (test/io/hub_server.ts): a fake "stanfordnlp/sst2" whose Parquet files are written here with
// hyparquet-writer from a slice of ../shared/data/sst2.*.jsonl (integer labels, column `sentence`,
// GLUE's unlabelled test split with -1), the HF cache under a temp HF_HOME, hf:// overrides, the
// fallback to a later file layout, errors, the cache with the server gone, and `abft eval` end to end.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { AbftError } from "../../src/gpu/errors.ts";
import { HUB_TASK_DATA, globToRegExp, hubLabelNames, hubTask, parseHubDataSpec, resolveHubTask, splitOfPath } from "../../src/icl/hub_tasks.ts";
import { BUILTIN_TASK_NAMES, BUILTIN_TASKS, loadTaskData, parseTaskSpec, type TaskData } from "../../src/icl/tasks.ts";
import type { DownloadProgress } from "../../src/io/hub.ts";
import { SHARED } from "../helpers.ts";
import { startHubServer, type HubServer } from "../io/hub_server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SST2_WORDS = ["negative", "positive"];

interface Row {
  text: string;
  label: string;
}

function jsonl(path: string, n: number): Row[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(0, n)
    .map((l) => JSON.parse(l) as Row);
}

/** A Parquet file as the hub's conversions write sst2: idx, sentence (GLUE's trailing space), label (int64). */
function sst2Parquet(rows: Row[], labels?: bigint[]): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: "idx", data: rows.map((_, i) => i), type: "INT32" },
        { name: "sentence", data: rows.map((r) => `${r.text} `), type: "STRING" },
        { name: "label", data: labels ?? rows.map((r) => BigInt(SST2_WORDS.indexOf(r.label))), type: "INT64" },
      ],
    }),
  );
}

// 5,200 training rows (eval's default pools need 1,024 + 4,096 from the train side) in two shards,
// 60 validation rows (the test side), 30 unlabelled test rows that must not be used.
const train = jsonl(join(SHARED, "data/sst2.train.jsonl"), 5200);
const valid = jsonl(join(SHARED, "data/sst2.test.jsonl"), 60);
const unlabelled = jsonl(join(SHARED, "data/sst2.test.jsonl"), 90).slice(60);
const sst5Train = jsonl(join(SHARED, "data/sst5.train.jsonl"), 40) as (Row & { label_id: number })[];
const sst5Test = jsonl(join(SHARED, "data/sst5.test.jsonl"), 20) as (Row & { label_id: number })[];
const enc = (s: string) => new TextEncoder().encode(s);

function repos() {
  return {
    "stanfordnlp/sst2": {
      type: "dataset" as const,
      files: {
        "README.md": enc("---\nconfigs:\n- config_name: default\n---\n"),
        "data/train-00000-of-00002.parquet": sst2Parquet(train.slice(0, 2600)),
        "data/train-00001-of-00002.parquet": sst2Parquet(train.slice(2600)),
        "data/validation-00000-of-00001.parquet": sst2Parquet(valid),
        "data/test-00000-of-00001.parquet": sst2Parquet(unlabelled, unlabelled.map(() => -1n)),
      },
    },
    // another repo: string labels in `text`/`label`, and a `label_text` column
    "test-org/reviews": {
      type: "dataset" as const,
      files: {
        "data/train-00000-of-00001.parquet": textParquet(train.slice(0, 50)),
        "data/test-00000-of-00001.parquet": textParquet(valid.slice(0, 10)),
      },
    },
    // SetFit-style: JSONL files only (no Parquet on main; the stand-in has no refs/convert/parquet)
    "SetFit/sst5": {
      type: "dataset" as const,
      files: {
        "train.jsonl": enc(sst5Train.map((r) => JSON.stringify({ text: r.text, label: r.label_id, label_text: r.label })).join("\n") + "\n"),
        "test.jsonl": enc(sst5Test.map((r) => JSON.stringify({ text: r.text, label: r.label_id, label_text: r.label })).join("\n") + "\n"),
        "validation.jsonl": enc('{"text": "unused", "label": 2, "label_text": "neutral"}\n'),
      },
    },
  };
}

function textParquet(rows: Row[]): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: "text", data: rows.map((r) => r.text), type: "STRING" },
        { name: "label", data: rows.map((r) => r.label), type: "STRING" },
        { name: "label_text", data: rows.map((r) => r.label.toUpperCase()), type: "STRING" },
      ],
    }),
  );
}

const HF_VARS = ["HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"];
const saved: Record<string, string | undefined> = {};
let server: HubServer;
let tmp: string;
let home: string;

beforeAll(() => {
  for (const v of HF_VARS) {
    saved[v] = process.env[v];
    delete process.env[v];
  }
  tmp = mkdtempSync(join(tmpdir(), "abft-hubtasks-"));
  home = join(tmp, "hf");
  server = startHubServer({ repos: repos() });
  process.env.HF_ENDPOINT = server.url;
  process.env.HF_HOME = home;
});

afterAll(() => {
  server.stop();
  for (const v of HF_VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** The examples expected from rows: trimmed text, label index by the task's label words. */
function expected(rows: Row[], words = SST2_WORDS) {
  return rows.map((r) => ({ text: r.text.trim(), label: words.indexOf(r.label) }));
}
const simple = (d: TaskData) => d.examples.map((e) => ({ text: e.text, label: e.label }));

async function expectError(p: Promise<unknown>, code: string, pattern: RegExp): Promise<AbftError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AbftError);
  expect((err as AbftError).code).toBe(code);
  expect((err as Error).message).toMatch(pattern);
  return err as AbftError;
}

describe("the table", () => {
  test("every built-in task has an entry whose class ids cover all its label words", () => {
    expect(Object.keys(HUB_TASK_DATA).sort()).toEqual([...BUILTIN_TASK_NAMES].sort());
    for (const name of BUILTIN_TASK_NAMES) {
      const task = BUILTIN_TASKS[name];
      const e = HUB_TASK_DATA[name];
      expect(e.repoId).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(e.textColumn.length).toBeGreaterThan(0);
      expect(e.labelColumn.length).toBeGreaterThan(0);
      // one class per label word, each word once
      expect(e.classes.length).toBe(task.labelWords.length);
      expect(e.classes.map(([, w]) => w).sort()).toEqual([...task.labelWords].sort());
      const names = hubLabelNames(task, e);
      e.classes.forEach(([cls, word], id) => {
        const i = task.labelWords.indexOf(word);
        expect(names[String(id)]).toBe(i);
        expect(names[cls]).toBe(i);
        // the same integer ids tasks.ts documents for the HF datasets, and the same class names
        expect(task.labelNames[String(id)]).toBe(i);
        if (cls in task.labelNames) expect(task.labelNames[cls]).toBe(i);
      });
      // the same separate / pooled choice as tasks.ts
      if (task.split === "separate") {
        expect(e.train?.length).toBeGreaterThan(0);
        expect(e.test?.length).toBeGreaterThan(0);
        expect(e.all).toBeUndefined();
      } else {
        expect(e.all?.length).toBeGreaterThan(0);
        expect(e.train).toBeUndefined();
      }
      expect(e.layouts.length).toBeGreaterThan(0);
      for (const l of e.layouts) {
        expect(l.pattern).toContain("{split}");
        expect(l.revision.length).toBeGreaterThan(0);
      }
    }
    expect(HUB_TASK_DATA.sst2.test).toEqual(["validation"]); // GLUE's test split has no labels
  });

  test("globs and split names", () => {
    expect(globToRegExp("data/train-*.parquet").test("data/train-00000-of-00002.parquet")).toBe(true);
    expect(globToRegExp("data/train-*.parquet").test("data/sub/train-0.parquet")).toBe(false);
    expect(globToRegExp("**.parquet").test("a/b/c.parquet")).toBe(true);
    expect(globToRegExp("default/train/*.parquet").test("default/train/0000.parquet")).toBe(true);
    expect(splitOfPath("data/train-00000-of-00001.parquet")).toBe("train");
    expect(splitOfPath("emotion/validation/0000.parquet")).toBe("validation");
    expect(splitOfPath("hate/test-00000-of-00001.parquet")).toBe("test");
    expect(splitOfPath("data/contest.parquet")).toBe(null);
  });
});

describe("hf:// specs", () => {
  test("repo, revision, path glob, folder, options", () => {
    expect(parseHubDataSpec("hf://datasets/stanfordnlp/sst2")).toEqual({ repoId: "stanfordnlp/sst2" });
    expect(parseHubDataSpec("hf://datasets/org/name/data/train-*.parquet")).toEqual({ repoId: "org/name", all: ["data/train-*.parquet"] });
    expect(parseHubDataSpec("hf://datasets/org/name/data")).toEqual({ repoId: "org/name", all: ["data/**.parquet"] });
    expect(parseHubDataSpec("hf://datasets/org/name@v1.0/x/")).toEqual({ repoId: "org/name", revision: "v1.0", all: ["x/**.parquet"] });
    expect(parseHubDataSpec("hf://datasets/org/name@refs/convert/parquet/default/train/*.parquet")).toEqual({
      repoId: "org/name",
      revision: "refs/convert/parquet",
      all: ["default/train/*.parquet"],
    });
    expect(parseHubDataSpec("hf://datasets/org/name@refs%2Fpr%2F3")).toEqual({ repoId: "org/name", revision: "refs/pr/3" });
    expect(parseHubDataSpec("hf://datasets/org/name?train=a/*.parquet,b/*.parquet&test=c/*.parquet&text=sentence&label=coarse_label")).toEqual({
      repoId: "org/name",
      train: ["a/*.parquet", "b/*.parquet"],
      test: ["c/*.parquet"],
      textColumn: "sentence",
      labelColumn: "coarse_label",
    });
  });
  test("errors are one line with the form as the hint", () => {
    const bad = ["hf://org/name", "hf://datasets/justone", "hf://datasets/org/name?train=x", "hf://datasets/org/name?size=3", "hf://datasets/org/name/x.parquet?train=a&test=b", "hf://datasets/org/name?text="];
    for (const s of bad) {
      let err: unknown;
      try {
        parseHubDataSpec(s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AbftError);
      expect((err as AbftError).code).toBe("BAD_DATA_SPEC");
      expect((err as AbftError).hint).toContain("hf://datasets/<org>/<name>");
      expect((err as Error).message).not.toContain("\n");
    }
  });
});

describe("against the local hub", () => {
  test("sst2 without --data: the train shards and the validation split, exactly, into the HF cache", async () => {
    const events: DownloadProgress[] = [];
    const r = await resolveHubTask(BUILTIN_TASKS.sst2, { onProgress: (p) => events.push(p) });
    const commit = server.commitOf("stanfordnlp/sst2");
    expect(r.repoId).toBe("stanfordnlp/sst2");
    expect(r.commit).toBe(commit);
    expect(r.fromCache).toBe(false);
    expect(r.files).toEqual(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet"]);
    const snap = join(home, "hub", "datasets--stanfordnlp--sst2", "snapshots", commit);
    expect(r.task.files.train).toEqual([join(snap, "data/train-00000-of-00002.parquet"), join(snap, "data/train-00001-of-00002.parquet")]);
    expect(r.task.files.test).toEqual([join(snap, "data/validation-00000-of-00001.parquet")]);
    expect(r.task.split).toBe("separate");
    expect(r.task.textColumn).toBe("sentence");
    expect(r.task.labelColumn).toBe("label");
    // the unlabelled test split was neither fetched nor cached
    expect(server.bytesServed.has("stanfordnlp/sst2/data/test-00000-of-00001.parquet")).toBe(false);
    expect(existsSync(join(snap, "data/test-00000-of-00001.parquet"))).toBe(false);
    expect(readFileSync(join(home, "hub", "datasets--stanfordnlp--sst2", "refs", "main"), "utf8").trim()).toBe(commit);
    expect(new Set(events.filter((e) => e.done).map((e) => e.file)).size).toBe(3);

    const data = await loadTaskData(r.task);
    expect(data.split).toBe("separate");
    expect(data.nTrainSide).toBe(5200);
    expect(simple(data)).toEqual([...expected(train), ...expected(valid)]);
    expect(data.examples[5200].where).toBe(`${join(snap, "data/validation-00000-of-00001.parquet")}: row 1`);
  });

  test("hf:// overrides: a glob (pooled), train=/test= with columns, another repo split by file names", async () => {
    const pooled = await hubTask(BUILTIN_TASKS.sst2, { data: "hf://datasets/stanfordnlp/sst2/data/validation-*.parquet" });
    expect(pooled.split).toBe("pooled");
    expect(simple(await loadTaskData(pooled))).toEqual(expected(valid));

    // the task's own repo pinned to a commit: the table's files, straight from the cache
    const commit = server.commitOf("stanfordnlp/sst2");
    server.resetStats();
    const pinned = await resolveHubTask(BUILTIN_TASKS.sst2, { data: `hf://datasets/stanfordnlp/sst2@${commit}` });
    expect(pinned.revision).toBe(commit);
    expect(pinned.fromCache).toBe(true);
    expect(server.requests.length).toBe(0);
    expect(pinned.task.split).toBe("separate");
    expect(pinned.files).toEqual(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet"]);

    // label_text holds upper-case names: a user task maps them through its own label names
    const user = parseTaskSpec(
      { name: "rev", in_prefix: "review: ", label_prefix: "sentiment:", label_words: ["bad", "good"], label_names: { bad: ["NEGATIVE"], good: ["POSITIVE"] }, files: "unused.jsonl" },
      tmp,
    );
    const sep = await hubTask(user, { data: "hf://datasets/test-org/reviews?train=data/train-*.parquet&test=data/test-*.parquet&label=label_text" });
    expect(sep.split).toBe("separate");
    expect(sep.labelColumn).toBe("label_text");
    const d = await loadTaskData(sep);
    expect(d.nTrainSide).toBe(50);
    expect(simple(d)).toEqual([...expected(train.slice(0, 50)), ...expected(valid.slice(0, 10))]);

    // no globs, another repo: every Parquet file, train / test by their names; columns found by name
    const auto = await hubTask(BUILTIN_TASKS.sst2, { data: "hf://datasets/test-org/reviews" });
    expect(auto.split).toBe("separate");
    expect(auto.textColumn).toBeUndefined();
    expect(simple(await loadTaskData(auto))).toEqual([...expected(train.slice(0, 50)), ...expected(valid.slice(0, 10))]);
    // a pooled task pools them
    const mrAuto = await hubTask(BUILTIN_TASKS.mr, { data: "hf://datasets/test-org/reviews" });
    expect(mrAuto.split).toBe("pooled");
    expect((await loadTaskData(mrAuto)).examples.length).toBe(60);
  });

  test("a later layout when the first has no files: SetFit-style JSONL for sst5, class ids to label words", async () => {
    server.resetStats();
    const r = await resolveHubTask(BUILTIN_TASKS.sst5);
    expect(r.files).toEqual(["train.jsonl", "test.jsonl"]);
    expect(r.revision).toBe("main");
    // main had no Parquet, then refs/convert/parquet (absent here), then main's JSONL
    const infos = server.requests.filter((q) => q.path.startsWith("/api/datasets/SetFit/sst5/revision/")).map((q) => decodeURIComponent(q.path.split("/revision/")[1]));
    expect(infos).toEqual(["main", "refs/convert/parquet", "main"]);
    const d = await loadTaskData(r.task);
    const words = BUILTIN_TASKS.sst5.labelWords;
    expect(d.nTrainSide).toBe(40);
    expect(simple(d)).toEqual([...sst5Train, ...sst5Test].map((x) => ({ text: x.text, label: x.label_id })));
    expect(d.examples.map((e) => words[e.label])).toEqual([...sst5Train, ...sst5Test].map((x) => words[x.label_id]));
  });

  test("errors: a user task without data, a missing repo, offline without the cache", async () => {
    const user = parseTaskSpec({ name: "mine", in_prefix: "x: ", label_prefix: "y:", label_words: ["a", "b"], files: "a.jsonl" }, tmp);
    const e = await expectError(hubTask(user), "NO_DATA", /task mine: no data given/);
    expect(e.hint).toContain("--data");
    // mr's repo is not on the stand-in: the hub client's error, not masked by the layout fallback
    await expectError(hubTask(BUILTIN_TASKS.mr), "REPO_NOT_FOUND", /cornell-movie-review-data\/rotten_tomatoes was not found/);
    await expectError(hubTask(BUILTIN_TASKS.sst2, { data: "hf://datasets/stanfordnlp/sst2/nothing/*.parquet" }), "NO_TASK_FILES", /dataset stanfordnlp\/sst2 has none/);
    // offline with an empty cache
    const e2 = await expectError(
      hubTask(BUILTIN_TASKS.sst2, { offline: true, cacheDir: join(tmp, "empty-cache") }),
      "OFFLINE_MISS",
      /offline mode .* dataset stanfordnlp\/sst2 .* not complete in the cache/,
    );
    expect(e2.hint).toBeDefined();
  });

  test(
    "abft eval --task sst2 without --data downloads through the hub client and evaluates",
    async () => {
      const cliHome = join(tmp, "cli-hf");
      const out = join(tmp, "eval.json");
      const proc = Bun.spawn(
        ["bun", "src/cli/main.ts", "eval", "--model", join(SHARED, "models/babygpt2"), "--task", "sst2", "--test-queries", "4", "--micro-batch", "8", "--out", out, "--json"],
        { cwd: ROOT, env: { ...process.env, HF_ENDPOINT: server.url, HF_HOME: cliHome }, stdout: "pipe", stderr: "pipe" },
      );
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) console.error(stderr);
      expect(code).toBe(0);
      expect(stderr).toContain("sst2 data: hub dataset stanfordnlp/sst2 (main, commit");
      const result = JSON.parse(stdout.trim().split("\n").pop()!);
      expect(result.task).toBe("sst2");
      expect(result.n).toBe(8); // 4 queries x 2 demonstration sets
      expect(result.accuracy).toBeGreaterThanOrEqual(0);
      expect(existsSync(join(cliHome, "hub", "datasets--stanfordnlp--sst2", "snapshots", server.commitOf("stanfordnlp/sst2"), "data/validation-00000-of-00001.parquet"))).toBe(true);
    },
    240_000,
  );

  // last: it stops the server
  test("a second call uses the cache with the server stopped, and offline mode too", async () => {
    server.stop();
    const r = await resolveHubTask(BUILTIN_TASKS.sst2);
    expect(r.fromCache).toBe(true);
    expect(r.commit).toBe(server.commitOf("stanfordnlp/sst2"));
    expect(simple(await loadTaskData(r.task))).toEqual([...expected(train), ...expected(valid)]);
    const off = await resolveHubTask(BUILTIN_TASKS.sst2, { offline: true });
    expect(off.task.files).toEqual(r.task.files);
    // not cached and the hub unreachable: the hub client's network error
    await expectError(hubTask(BUILTIN_TASKS.teh), "NETWORK", /cannot reach .* and dataset cardiffnlp\/tweet_eval is not in the cache/);
  });
});
