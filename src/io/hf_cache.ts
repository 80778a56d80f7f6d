// The Hugging Face hub cache on disk, laid out exactly as Python's huggingface_hub lays it out, so
// that files cached by Python users are reused and Python finds what abft downloads:
//
//   <cache>/models--<org>--<name>/            (datasets--<org>--<name> for datasets)
//     blobs/<etag>                            file contents, named by the hub's ETag (git blob sha1,
//                                             or the sha256 of an LFS file); <etag>.incomplete while
//                                             downloading
//     snapshots/<commit>/<path>               relative symlink → ../../blobs/<etag>
//     refs/<revision>                         the commit hash the revision (branch, tag) pointed to
//     .no_exist/<commit>/<path>               empty marker: the file is known to be absent
//
// <cache> is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (older name), else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub constants.py).
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, copyFileSync, unlinkSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { homedir } from "node:os";

export type RepoType = "model" | "dataset";

export const COMMIT_RE = /^[0-9a-f]{40}$/;

type Env = Record<string, string | undefined>;

/** HF_HOME: the root of everything huggingface_hub keeps (token, hub cache, ...). */
export function hfHome(env: Env = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  const xdg = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(xdg, "huggingface");
}

/** The hub cache folder, resolved from the environment as huggingface_hub does. */
export function hubCacheDir(env: Env = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), "hub");
}

/** "models--org--name" / "datasets--org--name". */
export function repoFolderName(repoId: string, type: RepoType = "model"): string {
  return [`${type}s`, ...repoId.split("/")].join("--");
}

export function repoCacheDir(cacheDir: string, repoId: string, type: RepoType = "model"): string {
  return join(cacheDir, repoFolderName(repoId, type));
}

export function blobPath(repoDir: string, etag: string): string {
  return join(repoDir, "blobs", etag);
}

export function snapshotDir(repoDir: string, commit: string): string {
  return join(repoDir, "snapshots", commit);
}

/** The commit a revision points to in the cache: the revision itself if it is a hash, else refs/<rev>. */
export function readRef(repoDir: string, revision: string): string | null {
  if (COMMIT_RE.test(revision)) return revision;
  const ref = join(repoDir, "refs", revision);
  if (!existsSync(ref)) return null;
  const commit = readFileSync(ref, "utf8").trim();
  return COMMIT_RE.test(commit) ? commit : null;
}

/** Records that `revision` points at `commit` (nothing to record when the revision is the commit). */
export function writeRef(repoDir: string, revision: string, commit: string): void {
  if (revision === commit) return;
  const ref = join(repoDir, "refs", revision);
  mkdirSync(dirname(ref), { recursive: true });
  if (existsSync(ref) && readFileSync(ref, "utf8").trim() === commit) return;
  writeFileSync(ref, commit);
}

/** The snapshot path of a file if the file is there (the symlink resolves), else null. */
export function cachedFile(repoDir: string, commit: string, path: string): string | null {
  const p = join(snapshotDir(repoDir, commit), path);
  try {
    return statSync(p).isFile() ? p : null;
  } catch {
    return null;
  }
}

/** Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (a copy where symlinks fail). */
export function linkSnapshotFile(repoDir: string, commit: string, path: string, etag: string): string {
  const pointer = join(snapshotDir(repoDir, commit), path);
  const blob = blobPath(repoDir, etag);
  mkdirSync(dirname(pointer), { recursive: true });
  try {
    lstatSync(pointer);
    unlinkSync(pointer); // a stale or broken link
  } catch {}
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch {
    copyFileSync(blob, pointer);
  }
  return pointer;
}

/** Records that a file does not exist at a commit (as huggingface_hub's .no_exist markers). */
export function markNoExist(repoDir: string, commit: string, path: string): void {
  const p = join(repoDir, ".no_exist", commit, path);
  mkdirSync(dirname(p), { recursive: true });
  if (!existsSync(p)) writeFileSync(p, "");
}

export function isNoExist(repoDir: string, commit: string, path: string): boolean {
  return existsSync(join(repoDir, ".no_exist", commit, path));
}

/** Every file in a snapshot (relative paths with "/", sorted), following symlinks. */
export function listSnapshot(repoDir: string, commit: string): string[] {
  const root = snapshotDir(repoDir, commit);
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue; // a dangling link: the blob is gone
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(relative(root, p).split(sep).join("/"));
    }
  };
  walk(root);
  return out.sort();
}
