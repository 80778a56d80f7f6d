// `bun run sz`: lines per folder and the longest files, to keep the code base readable
// (the project's rule: no file over ~400 lines without a reason).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const FOLDERS = ["kernels", "src", "models", "scripts", "test"];
const files: { path: string; lines: number }[] = [];
const walk = (dir: string) => {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(ts|wgsl)$/.test(f)) files.push({ path: relative(ROOT, p), lines: readFileSync(p, "utf8").split("\n").length });
  }
};
for (const f of FOLDERS) walk(join(ROOT, f));
const byFolder = new Map<string, number>();
for (const f of files) {
  const folder = f.path.split("/").slice(0, 2).join("/").replace(/\/[^/]+\.(ts|wgsl)$/, "");
  byFolder.set(folder, (byFolder.get(folder) ?? 0) + f.lines);
}
for (const [folder, n] of [...byFolder].sort()) console.log(`${String(n).padStart(7)}  ${folder}`);
console.log(`${String(files.reduce((a, f) => a + f.lines, 0)).padStart(7)}  total`);
const long = files.filter((f) => f.lines > 400).sort((a, b) => b.lines - a.lines);
if (long.length) console.log(`\nover 400 lines:\n${long.map((f) => `${String(f.lines).padStart(7)}  ${f.path}`).join("\n")}`);
