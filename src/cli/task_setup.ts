// From command-line options to the prompts of a task: the task (built-in or a spec file), its data
// (--data folder or file, an hf://datasets/... spec, or for a built-in task without --data its hub
// dataset in the HF cache: hub_tasks.ts), the seeded split, and the training and test prompts built
// with the model's tokenizer — or prompts imported exactly from JSONL files (--train-prompts/
// --test-prompts).
import { importPrompts } from "../icl/export.ts";
import { buildStandardSets, PromptBuilder, type IclPrompt } from "../icl/prompts.ts";
import type { SplitSizes, TaskSplit, PromptSpec } from "../icl/splits.ts";
import { loadTaskData, resolveTask, withDataPath, type TaskData, type TaskSpec } from "../icl/tasks.ts";
import { isHubDataSpec, resolveHubTask } from "../icl/hub_tasks.ts";
import type { ModelSource } from "../io/model_source.ts";
import { tokenizerFor } from "../io/model_source.ts";
import { progress, say, type Progress } from "./progress.ts";

export interface TaskOptions {
  task: string;
  data?: string;
  seed: number;
  k?: number;
  trainSize?: number;
  testQueries?: number;
  trainPrompts?: string;
  testPrompts?: string;
  /** "error" (default) or "drop-demos" for prompts longer than the model's context */
  overflow?: "error" | "drop-demos";
}

export interface TaskPrompts {
  task: TaskSpec;
  train: IclPrompt[];
  test: IclPrompt[];
  builder: PromptBuilder | null;
  /** the data and split behind built prompts (null for imported prompts) */
  data: TaskData | null;
  split: TaskSplit | null;
  testSpecs: PromptSpec[];
  k: number;
  /** how the prompts were made, for config.json */
  provenance: Record<string, unknown>;
}

export async function taskPrompts(src: ModelSource, o: TaskOptions, need: { train: boolean; test: boolean }): Promise<TaskPrompts> {
  let task = resolveTask(o.task);
  const imported = { train: o.trainPrompts ? importPrompts(o.trainPrompts) : null, test: o.testPrompts ? importPrompts(o.testPrompts) : null };
  const missing = (need.train && !imported.train) || (need.test && !imported.test);
  if (!missing) {
    const k = (imported.train ?? imported.test ?? [])[0]?.label_positions.length ?? 0;
    return {
      task, train: imported.train ?? [], test: imported.test ?? [], builder: null, data: null, split: null, testSpecs: [], k,
      provenance: { trainPrompts: o.trainPrompts, testPrompts: o.testPrompts },
    };
  }
  if (o.data && !isHubDataSpec(o.data)) task = withDataPath(task, o.data);
  else if (o.data || (task.builtin && !task.baseDir)) {
    // no --data for a built-in task, or --data hf://...: the task's hub dataset (hub_tasks.ts)
    const bars = new Map<string, Progress>();
    const hub = await resolveHubTask(task, {
      data: o.data,
      onProgress: (p) => {
        if (p.cached) return;
        let bar = bars.get(p.file);
        if (!bar) bars.set(p.file, (bar = progress(`download ${p.file}`, Math.max(p.total, 1), "bytes")));
        bar.update(p.downloaded);
        if (p.done) bar.stop();
      },
    });
    task = hub.task;
    say(`abft: ${task.name} data: hub dataset ${hub.repoId} (${hub.revision}, commit ${hub.commit.slice(0, 12)}, ${hub.files.length} files${hub.fromCache ? ", cached" : ""})`);
  }
  const data = await loadTaskData(task);
  const builder = new PromptBuilder(tokenizerFor(src), task, { maxTokens: src.config.maxPositions, overflow: o.overflow ?? "error" });
  const sizes: Partial<SplitSizes> = {};
  if (o.k !== undefined) sizes.k = o.k;
  if (o.trainSize !== undefined) sizes.trainPrompts = o.trainSize;
  if (o.testQueries !== undefined) sizes.testQueries = o.testQueries;
  const sets = buildStandardSets(builder, data, o.seed, sizes);
  return {
    task,
    train: imported.train ?? sets.train,
    test: imported.test ?? sets.test,
    builder,
    data,
    split: sets.split,
    testSpecs: sets.testSpecs,
    k: sets.sizes.k,
    provenance: { files: data.files, sizes: sets.sizes, seed: o.seed, examples: data.examples.length },
  };
}
