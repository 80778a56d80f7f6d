// Task data from the Hugging Face hub's datasets: the built-in tasks' Parquet files fetched (or found)
// in the standard HF cache by the same hub client as models (src/io/hub.ts downloadDataset), so that
// `abft run --task sst2` works without --data. The result is the task with absolute file paths, read
// by loadTaskData like local files.
//
// The table (HUB_TASK_DATA): task → hub dataset repo, which of its splits make the train side and the
// test side (or the pooled files), the text and label columns, and the dataset's class ids → the
// task's label words. The datasets hold the same content as ../shared/data's sources (SOURCES.md):
//   task  repo (subset)                                  splits used                        columns
//   sst2  stanfordnlp/sst2                                train / validation (GLUE dev)      sentence, label
//   mr    cornell-movie-review-data/rotten_tomatoes       train + validation + test pooled   text, label
//   fp    takala/financial_phrasebank (sentences_allagree) train pooled                    sentence, label
//   sst5  SetFit/sst5                                     train / test                       text, label
//   trec  CogComp/trec                                    train + test pooled                text, coarse_label
//   subj  SetFit/subj                                     train + test pooled                text, label
//   tee   cardiffnlp/tweet_eval (emotion)                 train + validation + test pooled   text, label
//   teh   cardiffnlp/tweet_eval (hate)                    train / test                       text, label
// (the same separate/pooled choices as tasks.ts; GLUE's sst2 test split has no labels (-1), so the
// validation split is the test side, as in the shared files.) Row order may differ from the shared
// JSONL files (mr, subj), so a seed does not give the same pools from both sources.
//
// File layouts (decision). This machine cannot reach the hub, so the table follows the hub's layouts
// as documented, not as observed: a dataset stored as Parquet on "main" has
// `data/<split>-NNNNN-of-NNNNN.parquet` (default subset) or `<subset>/<split>-NNNNN-of-NNNNN.parquet`;
// the dataset viewer's conversion of any dataset (also script-based ones such as CogComp/trec and
// takala/financial_phrasebank) is on revision "refs/convert/parquet" as `<subset>/<split>/NNNN.parquet`
// (subset "default" when there is none); SetFit's datasets were uploaded as `<split>.jsonl`. Each
// entry lists its candidate layouts and they are tried in order: the first revision that has files for
// every side wins (a missing revision or no matching file moves on; a network failure or an offline
// cache miss also moves on, since a later layout may be cached, and is the error reported when none
// works). If the hub moves a dataset, `--data hf://...` (below) points at any repo and files.
//
// Hub data specs (--data): hf://datasets/<org>/<name>[@<revision>][/<glob>][?<key>=<value>&...]
//   hf://datasets/stanfordnlp/sst2                      the task's table entry when the repo is the
//                                                       task's own; another repo: every Parquet file,
//                                                       split into train / test by the split names in
//                                                       the paths when the task is "separate" (test
//                                                       side: the test files, else validation), else
//                                                       pooled
//   hf://datasets/org/name/data/train-*.parquet         the matching files, pooled (as one --data file)
//   hf://datasets/org/name/data                         a folder (no "." and no "*" in the last
//                                                       segment): its Parquet files, pooled
//   hf://datasets/org/name@refs/convert/parquet/default/train/*.parquet
//                                                       a revision: branch, tag, commit, refs/pr/N,
//                                                       refs/convert/parquet (or %2F-encoded, as in
//                                                       huggingface_hub's HfFileSystem)
//   hf://datasets/org/name?train=data/train-*&test=data/validation-*&text=sentence&label=label
//                                                       separate train and test files (both needed),
//                                                       the text / label columns; train, test and all
//                                                       take comma-separated globs and may repeat
// Globs match repo paths: "*" within a folder, "**" across folders; "?" starts the options, so it is
// not a wildcard here. The label values map through the task's own label names (for built-in tasks
// these include the HF integer ids), plus the table entry's class ids when the repo is the task's own.
import { AbftError } from "../gpu/errors.ts";
import { downloadDataset, type DownloadProgress, type DownloadResult } from "../io/hub.ts";
import { HubError } from "../io/hub_http.ts";
import { join } from "node:path";
import { BUILTIN_TASK_NAMES, isBuiltinTask, TaskError, type BuiltinTaskName, type SplitMode, type TaskFiles, type TaskSpec } from "./tasks.ts";

/** Where one layout keeps a split's files: `{split}` in `pattern` is replaced by the split name. */
export interface HubLayout {
  revision: string;
  /** e.g. "data/{split}-*.parquet" */
  pattern: string;
}

export interface HubTaskSource {
  repoId: string;
  /** the dataset's subset (config); undefined: the default one */
  subset?: string;
  /** split names: train and test sides (split "separate"), or all pooled (split "pooled"), in order */
  train?: readonly string[];
  test?: readonly string[];
  all?: readonly string[];
  textColumn: string;
  labelColumn: string;
  /** classes[id] = [the dataset's class name for id, the task's label word] */
  classes: readonly (readonly [string, string])[];
  /** candidate file layouts, tried in order */
  layouts: readonly HubLayout[];
}

/** main's Parquet layout, then the dataset viewer's conversion (see the file header). */
function parquetLayouts(subset?: string): HubLayout[] {
  return [
    { revision: "main", pattern: `${subset ?? "data"}/{split}-*.parquet` },
    { revision: "refs/convert/parquet", pattern: `${subset ?? "default"}/{split}/*.parquet` },
  ];
}
const SETFIT_LAYOUTS: HubLayout[] = [...parquetLayouts(), { revision: "main", pattern: "{split}.jsonl" }];

const same = (...words: string[]) => words.map((w) => [w, w] as const);

export const HUB_TASK_DATA: Readonly<Record<BuiltinTaskName, HubTaskSource>> = {
  sst2: {
    repoId: "stanfordnlp/sst2", train: ["train"], test: ["validation"], textColumn: "sentence", labelColumn: "label",
    classes: same("negative", "positive"), layouts: parquetLayouts(),
  },
  mr: {
    repoId: "cornell-movie-review-data/rotten_tomatoes", all: ["train", "validation", "test"], textColumn: "text", labelColumn: "label",
    classes: [["neg", "negative"], ["pos", "positive"]], layouts: parquetLayouts(),
  },
  fp: {
    repoId: "takala/financial_phrasebank", subset: "sentences_allagree", all: ["train"], textColumn: "sentence", labelColumn: "label",
    classes: same("negative", "neutral", "positive"), layouts: parquetLayouts("sentences_allagree"),
  },
  sst5: {
    repoId: "SetFit/sst5", train: ["train"], test: ["test"], textColumn: "text", labelColumn: "label",
    classes: [["very negative", "poor"], ["negative", "bad"], ["neutral", "neutral"], ["positive", "good"], ["very positive", "great"]],
    layouts: SETFIT_LAYOUTS,
  },
  trec: {
    repoId: "CogComp/trec", all: ["train", "test"], textColumn: "text", labelColumn: "coarse_label",
    classes: [["ABBR", "short"], ["ENTY", "entity"], ["DESC", "description"], ["HUM", "person"], ["LOC", "location"], ["NUM", "number"]],
    layouts: parquetLayouts(),
  },
  subj: {
    repoId: "SetFit/subj", all: ["train", "test"], textColumn: "text", labelColumn: "label",
    classes: same("objective", "subjective"), layouts: SETFIT_LAYOUTS,
  },
  tee: {
    repoId: "cardiffnlp/tweet_eval", subset: "emotion", all: ["train", "validation", "test"], textColumn: "text", labelColumn: "label",
    classes: [["anger", "anger"], ["joy", "joy"], ["optimism", "positive"], ["sadness", "sad"]], layouts: parquetLayouts("emotion"),
  },
  teh: {
    repoId: "cardiffnlp/tweet_eval", subset: "hate", train: ["train"], test: ["test"], textColumn: "text", labelColumn: "label",
    classes: [["non-hate", "normal"], ["hate", "hate"]], layouts: parquetLayouts("hate"),
  },
};

// ---------------------------------------------------------------------------------------------
// hf:// specs

export interface HubDataSpec {
  repoId: string;
  revision?: string;
  /** globs of pooled files (the path part, or all=) */
  all?: string[];
  train?: string[];
  test?: string[];
  textColumn?: string;
  labelColumn?: string;
}

const HF_PREFIX = "hf://";

export function isHubDataSpec(data: string): boolean {
  return data.startsWith(HF_PREFIX);
}

/** Parses hf://datasets/<org>/<name>[@<revision>][/<glob>][?key=value&...] (see the file header). */
export function parseHubDataSpec(spec: string): HubDataSpec {
  const syntax = "hf://datasets/<org>/<name>[@<revision>][/<glob>][?train=<glob>&test=<glob>&text=<column>&label=<column>]";
  const fail = (why: string): never => {
    throw new AbftError(`--data ${spec}: ${why}`, "BAD_DATA_SPEC", `the form is ${syntax}`);
  };
  if (!spec.startsWith(HF_PREFIX)) fail(`not an hf:// spec`);
  let rest = spec.slice(HF_PREFIX.length);
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  if (!rest.startsWith("datasets/")) fail(`abft reads task data from dataset repos: write hf://datasets/<org>/<name>`);
  rest = rest.slice("datasets/".length);
  const m = /^([\w.-]+)\/([\w.-]+)(?:@(refs\/convert\/parquet|refs\/pr\/\d+|[^/]+))?(?:\/(.*))?$/.exec(rest);
  if (!m) fail(`expected a repo id <org>/<name> after hf://datasets/`);
  const [, org, name, rawRev, path] = m!;
  if (org.includes("..") || name.includes("..")) fail(`"${org}/${name}" is not a repo id`);
  const out: HubDataSpec = { repoId: `${org}/${name}` };
  if (rawRev !== undefined) {
    let rev: string;
    try {
      rev = decodeURIComponent(rawRev);
    } catch {
      return fail(`bad revision "${rawRev}"`);
    }
    if (rev === "") fail(`empty revision after "@"`);
    out.revision = rev;
  }
  if (path !== undefined && path !== "") {
    const p = path.replace(/\/+$/, "");
    const last = p.slice(p.lastIndexOf("/") + 1);
    out.all = [path.endsWith("/") || (!last.includes(".") && !last.includes("*")) ? `${p}/**.parquet` : p];
  }
  if (query !== "") {
    for (const part of query.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      if (eq <= 0) fail(`option "${part}" is not key=value`);
      const key = part.slice(0, eq);
      let value: string;
      try {
        value = decodeURIComponent(part.slice(eq + 1));
      } catch {
        return fail(`bad value in "${part}"`);
      }
      if (value === "") fail(`option ${key} has no value`);
      if (key === "train" || key === "test" || key === "all") {
        const globs = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
        out[key] = [...(out[key] ?? []), ...globs];
      } else if (key === "text") out.textColumn = value;
      else if (key === "label") out.labelColumn = value;
      else fail(`unknown option "${key}" (train, test, all, text, label)`);
    }
  }
  if (!!out.train !== !!out.test) fail(`train= and test= go together (for pooled files give the glob as the path, or all=)`);
  if (out.train && out.all) fail(`give either train= and test= (separate files) or pooled files, not both`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resolving a task's data on the hub

export interface HubTaskOptions {
  /** an hf:// spec (--data); default: the task's table entry */
  data?: string;
  /** overrides the revision of every layout (a spec's @revision wins over this) */
  revision?: string;
  /** use only the cache (default: HF_HUB_OFFLINE) */
  offline?: boolean;
  onProgress?: (p: DownloadProgress) => void;
  /** the hub cache folder (default: HF_HUB_CACHE, HF_HOME/hub, ...) */
  cacheDir?: string;
  /** the hub's address (default: HF_ENDPOINT, else huggingface.co) */
  endpoint?: string;
  token?: string;
}

export interface HubTaskResult {
  /** the task with absolute file paths (in the cache's snapshot folder) and its columns */
  task: TaskSpec;
  repoId: string;
  revision: string;
  commit: string;
  /** the repo paths used, train side first */
  files: string[];
  /** nothing was fetched from the network */
  fromCache: boolean;
}

/** Globs of each side. */
interface Sides {
  train?: string[];
  test?: string[];
  all?: string[];
}

interface Candidate {
  revision: string;
  sides: Sides | "auto";
}

/** The task reading its data from the hub (downloaded, or found in the cache). */
export async function hubTask(task: TaskSpec, opts: HubTaskOptions = {}): Promise<TaskSpec> {
  return (await resolveHubTask(task, opts)).task;
}

/** hubTask, with where the data came from (repo, revision, commit, files). */
export async function resolveHubTask(task: TaskSpec, opts: HubTaskOptions = {}): Promise<HubTaskResult> {
  const spec = opts.data !== undefined ? parseHubDataSpec(opts.data) : null;
  const entry = task.builtin && isBuiltinTask(task.name) ? HUB_TASK_DATA[task.name] : undefined;
  if (!spec && !entry) {
    throw new AbftError(
      `task ${task.name}: no data given (only the built-in tasks ${BUILTIN_TASK_NAMES.join(", ")} have hub datasets)`,
      "NO_DATA",
      "pass --data <folder, or a CSV/TSV/JSONL/Parquet file, or hf://datasets/<org>/<name>[/<glob>]>",
    );
  }
  const repoId = spec ? spec.repoId : entry!.repoId;
  const own = entry !== undefined && entry.repoId === repoId;
  const revision = spec?.revision ?? opts.revision;

  let candidates: Candidate[];
  if (spec && (spec.all || spec.train)) {
    candidates = [{ revision: revision ?? "main", sides: spec.train ? { train: spec.train, test: spec.test! } : { all: spec.all! } }];
  } else if (own) {
    candidates = entryCandidates(entry!, revision);
  } else {
    candidates = [{ revision: revision ?? "main", sides: "auto" }];
  }

  const found = await fetchFirst(repoId, candidates, task, opts);
  const { result, sides } = found;
  const abs = (files: string[]) => files.map((f) => join(result.dir, f));
  let files: TaskFiles;
  let split: SplitMode;
  if (sides.train && sides.test) {
    files = { train: abs(sides.train), test: abs(sides.test) };
    split = "separate";
  } else {
    files = { all: abs(sides.all!) };
    split = "pooled";
  }
  const out: TaskSpec = {
    ...task,
    files,
    split,
    baseDir: undefined,
    textColumn: spec?.textColumn ?? (own ? entry!.textColumn : task.textColumn),
    labelColumn: spec?.labelColumn ?? (own ? entry!.labelColumn : task.labelColumn),
    labelNames: own ? hubLabelNames(task, entry!) : task.labelNames,
  };
  return {
    task: out,
    repoId,
    revision: result.revision,
    commit: result.commit,
    files: [...(sides.train ?? []), ...(sides.test ?? []), ...(sides.all ?? [])],
    fromCache: result.fromCache,
  };
}

/** The entry's globs per side for each of its layouts (a revision override applies to all of them). */
function entryCandidates(entry: HubTaskSource, revision?: string): Candidate[] {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (const layout of entry.layouts) {
    const globs = (splits?: readonly string[]) => splits?.map((s) => layout.pattern.replaceAll("{split}", s));
    const c: Candidate = {
      revision: revision ?? layout.revision,
      sides: entry.train ? { train: globs(entry.train)!, test: globs(entry.test)! } : { all: globs(entry.all)! },
    };
    const key = JSON.stringify(c);
    if (!seen.has(key)) out.push(c);
    seen.add(key);
  }
  return out;
}

/** The task's label names plus the dataset's class ids and class names, mapped through the table. */
export function hubLabelNames(task: TaskSpec, entry: HubTaskSource): Record<string, number> {
  const out: Record<string, number> = { ...task.labelNames };
  entry.classes.forEach(([name, word], id) => {
    const i = task.labelWords.indexOf(word);
    if (i < 0) throw new TaskError(`hub table for ${task.name}: "${word}" is not a label word of the task`);
    out[String(id)] = i;
    out[name] = i;
  });
  return out;
}

/** HubError codes after which the next layout is tried. */
const TRY_NEXT = new Set(["NO_PARQUET", "REVISION_NOT_FOUND", "ENTRY_NOT_FOUND", "NETWORK", "OFFLINE_MISS"]);

async function fetchFirst(
  repoId: string,
  candidates: Candidate[],
  task: TaskSpec,
  opts: HubTaskOptions,
): Promise<{ result: DownloadResult; sides: Sides }> {
  const misses: string[] = [];
  let unreachable: HubError | null = null;
  for (const c of candidates) {
    const include = c.sides === "auto" ? ["**.parquet"] : [...(c.sides.train ?? []), ...(c.sides.test ?? []), ...(c.sides.all ?? [])];
    let result: DownloadResult;
    try {
      result = await downloadDataset(repoId, {
        revision: c.revision,
        include,
        offline: opts.offline,
        onProgress: opts.onProgress,
        cacheDir: opts.cacheDir,
        endpoint: opts.endpoint,
        token: opts.token,
      });
    } catch (e) {
      if (e instanceof HubError && TRY_NEXT.has(e.code)) {
        if ((e.code === "NETWORK" || e.code === "OFFLINE_MISS") && !unreachable) unreachable = e;
        misses.push(`${c.revision}: ${include.join(", ")} (${e.code})`);
        continue;
      }
      throw e;
    }
    const sides = c.sides === "auto" ? autoSides(result.files, task.split) : partition(result.files, c.sides);
    const empty = (["train", "test", "all"] as const).filter((k) => sides[k] !== undefined && sides[k]!.length === 0);
    if (empty.length === 0) return { result, sides };
    misses.push(`${c.revision}: no files for the ${empty.join(", ")} side (${include.join(", ")})`);
  }
  if (unreachable) throw unreachable;
  throw new HubError(
    `dataset ${repoId} has none of the file layouts expected for task ${task.name}: ${misses.join("; ")}`,
    "NO_TASK_FILES",
    "name the files: --data hf://datasets/<org>/<name>[@<revision>]/<glob> (pooled) or ...?train=<glob>&test=<glob>",
  );
}

/** The downloaded files of each side (sorted, so that shards keep their order), in the sides' glob order. */
function partition(files: readonly string[], sides: Sides): Sides {
  const pick = (globs?: string[]) => {
    if (!globs) return undefined;
    const out: string[] = [];
    for (const g of globs) {
      const re = globToRegExp(g);
      for (const f of files) if (re.test(f) && !out.includes(f)) out.push(f);
    }
    return out;
  };
  return { train: pick(sides.train), test: pick(sides.test), all: pick(sides.all) };
}

const SPLIT_WORDS = {
  train: ["train", "training"],
  test: ["test", "testing"],
  validation: ["validation", "valid", "val", "dev"],
};

/** Which split a repo path belongs to, from split names as path words ("data/train-0000.parquet"). */
export function splitOfPath(path: string): "train" | "test" | "validation" | null {
  const words = path.toLowerCase().split(/[^a-z]+/);
  for (const [split, names] of Object.entries(SPLIT_WORDS)) {
    if (names.some((n) => words.includes(n))) return split as "train" | "test" | "validation";
  }
  return null;
}

/** Every file of a repo: train / test sides by split names when the task is separate, else pooled. */
function autoSides(files: readonly string[], split: SplitMode): Sides {
  if (split === "separate") {
    const of = (s: string) => files.filter((f) => splitOfPath(f) === s);
    const train = of("train");
    const test = of("test").length ? of("test") : of("validation");
    if (train.length && test.length) return { train, test };
  }
  return { all: [...files] };
}

/** "*" matches within a folder, "**" across folders, "?" one character (as hub.ts's include). */
export function globToRegExp(glob: string): RegExp {
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
