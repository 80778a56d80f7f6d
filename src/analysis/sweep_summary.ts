// Sweep summary.md: mean ± sample standard deviation over seeds of every finished cell's accuracy,
// one row per model and method (plus "Vanilla", the accuracy before training), one column per
// task, in the shape of the paper's Tables 1 and 4.
import { basename } from "node:path";
import { effectiveValue, variedKeys, type Cell } from "./sweep_cells.ts";
import type { CellFailure, CellResult } from "./sweep_results.ts";
import { describeValue, shortModel, type RunOptionTable, type SweepSpec } from "./sweep_spec.ts";

/** Options that change the evaluation (the "Vanilla" accuracy), as opposed to training only. */
const EVAL_KEYS = new Set(["model", "revision", "task", "data", "seed", "k", "test-queries", "test-prompts"]);

export function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** An accuracy (a fraction) as a percentage with two decimals. */
export const pct = (x: number) => (100 * x).toFixed(2);
const mdEscape = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

function taskTitle(task: string): string {
  return /^[a-z0-9]+$/.test(task) ? task.toUpperCase() : basename(task).replace(/\.json$/i, "");
}

interface Entry {
  values: number[];
  expected: number;
}

function formatEntry(e: Entry | undefined): string {
  if (!e || e.values.length === 0) return "–";
  const m = pct(mean(e.values));
  const s = e.values.length > 1 ? ` ± ${pct(sampleStd(e.values))}` : "";
  const n = e.values.length < e.expected ? ` (${e.values.length}/${e.expected})` : "";
  return `${m}${s}${n}`;
}

export interface SummaryInput {
  spec: SweepSpec;
  cells: Cell[];
  table: RunOptionTable;
  results: Map<number, CellResult>;
  failures: Map<number, CellFailure>;
}

/**
 * The markdown summary: one row per model and method (every varied key but seed and task), a
 * "Vanilla" row per model (accuracy before training) when the runs evaluated before, one column
 * per task with mean ± sample std over seeds, then the mean over the tasks and the mean training
 * time.
 */
export function summaryMarkdown({ spec, cells, table, results, failures }: SummaryInput): string {
  // a variant's label stands for its options
  const gridKeys = new Set(spec.grids.flatMap((g) => Object.keys(g)));
  const keys = variedKeys(spec).filter((k) => k === "variant" || gridKeys.has(k));
  const rowKeys = keys.filter((k) => k !== "seed" && k !== "task");
  const methodKeys = rowKeys.filter((k) => k !== "model");
  // the "Vanilla" accuracy depends on the evaluation settings only, whatever varies them
  const evalKeys = [...EVAL_KEYS].filter((k) => k !== "task" && k !== "seed");
  const evalOf = (c: Cell) => evalKeys.map((k) => effectiveValue(c.options, k, table));
  const evalVaried = evalKeys.filter((k, i) => k !== "model" && new Set(cells.map((c) => JSON.stringify(evalOf(c)[i]))).size > 1);
  const taskOf = (c: Cell) => String(effectiveValue(c.options, "task", table) ?? "-");
  const modelOf = (c: Cell) => String(effectiveValue(c.options, "model", table) ?? "-");
  const seedOf = (c: Cell) => String(effectiveValue(c.options, "seed", table) ?? "-");
  const tasks: string[] = [];
  for (const c of cells) if (!tasks.includes(taskOf(c))) tasks.push(taskOf(c));

  const keyOf = (c: Cell, ks: string[]) => JSON.stringify([modelOf(c), ...ks.map((k) => c.values[k])]);
  const methodLabel = (c: Cell) => {
    const parts = methodKeys.map((k) => (k === "variant" ? String(c.variant) : describeValue(k, c.values[k], table)));
    if (!keys.includes("objective") && !spec.variants) parts.unshift(describeValue("objective", effectiveValue(c.options, "objective", table), table));
    return parts.join(", ");
  };

  interface Row {
    model: string;
    method: string;
    group: string;
    byTask: Map<string, Entry>;
    seconds: number[];
  }
  const groups: string[] = [];
  const methodRows = new Map<string, Row>();
  const vanilla = new Map<string, Row>();
  // Vanilla accuracies of one (model group, task, seed): every method evaluated the same prompts
  const vanillaSeen = new Map<string, { row: Row; task: string; xs: number[] }>();
  for (const c of cells) {
    const group = JSON.stringify(evalOf(c));
    if (!groups.includes(group)) groups.push(group);
    const rk = keyOf(c, rowKeys);
    let row = methodRows.get(rk);
    if (!row) methodRows.set(rk, (row = { model: shortModel(modelOf(c)), method: methodLabel(c), group, byTask: new Map(), seconds: [] }));
    const task = taskOf(c);
    const e = row.byTask.get(task) ?? { values: [], expected: 0 };
    row.byTask.set(task, e);
    e.expected++;
    const r = results.get(c.index);
    if (r) {
      e.values.push(r.accuracy_after);
      row.seconds.push(r.train_seconds);
    }
    let v = vanilla.get(group);
    if (!v) {
      const evalParts = evalVaried.map((k) => describeValue(k, effectiveValue(c.options, k, table), table));
      vanilla.set(group, (v = { model: row.model, method: ["Vanilla", ...evalParts].join(", "), group, byTask: new Map(), seconds: [] }));
    }
    const vk = JSON.stringify([group, task, seedOf(c)]);
    let vs = vanillaSeen.get(vk);
    if (!vs) {
      vanillaSeen.set(vk, (vs = { row: v, task, xs: [] }));
      const ve = v.byTask.get(task) ?? { values: [], expected: 0 };
      v.byTask.set(task, ve);
      ve.expected++;
    }
    if (r && r.accuracy_before !== null && r.accuracy_before !== undefined) vs.xs.push(r.accuracy_before);
  }
  for (const vs of vanillaSeen.values()) if (vs.xs.length) vs.row.byTask.get(vs.task)!.values.push(mean(vs.xs));

  const lines: string[] = [];
  lines.push(`# Sweep ${spec.name}`, "");
  if (spec.description) lines.push(spec.description, "");
  lines.push(
    "Accuracy (%) on the test prompts after training: mean ± sample standard deviation (n − 1) over seeds; " +
      "(n/N): only n of the N runs of that entry have finished. Vanilla: the same prompts before training. " +
      "Mean: the mean of the task columns (* when some task has no result yet). Train s: mean training seconds per run.",
    "",
  );
  const header = ["Model", "Method", ...tasks.map(taskTitle), "Mean", "Train s"];
  lines.push(`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);
  let starred = false;
  const emit = (row: Row, withTime: boolean) => {
    const perTask = tasks.map((t) => row.byTask.get(t));
    const means = perTask.filter((e) => e && e.values.length).map((e) => mean(e!.values));
    const relevant = perTask.filter((e) => e && e.expected > 0).length;
    let meanCell = "–";
    if (means.length) {
      meanCell = pct(mean(means));
      if (means.length < relevant) (meanCell += "*"), (starred = true);
    }
    const time = withTime && row.seconds.length ? mean(row.seconds).toFixed(1) : "–";
    lines.push(`| ${[row.model, row.method, ...perTask.map(formatEntry), meanCell, time].map(mdEscape).join(" | ")} |`);
  };
  for (const g of groups) {
    const v = vanilla.get(g)!;
    if ([...v.byTask.values()].some((e) => e.values.length)) emit(v, false);
    for (const row of methodRows.values()) if (row.group === g) emit(row, true);
  }
  lines.push("");
  if (starred) lines.push("\\* mean over the tasks that have results so far.", "");
  const done = cells.filter((c) => results.has(c.index)).length;
  const failed = cells.filter((c) => !results.has(c.index) && failures.has(c.index));
  lines.push(`Cells: ${done} of ${cells.length} finished, ${failed.length} failed, ${cells.length - done - failed.length} not finished. Every finished cell is a row of results.csv.`, "");
  if (failed.length) {
    lines.push("## Failed cells", "", "| # | cell | exit | error (else the last line of stderr) |", "|---:|---|---:|---|");
    for (const c of failed) {
      const f = failures.get(c.index)!;
      lines.push(`| ${c.index} | ${c.id} | ${f.signal ? `${f.exit_code} (${f.signal})` : f.exit_code} | ${mdEscape(f.error ?? f.last_stderr)} |`);
    }
    lines.push("");
  }
  return lines.join("\n");
}
