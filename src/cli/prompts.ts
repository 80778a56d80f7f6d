// `abft prompts`: export a task's prompts exactly (token ids, label positions, correct positions,
// label, label token ids), one JSON object a line, so that another implementation can be run on
// identical data, and `--train-prompts/--test-prompts` can bring them back.
import type { Command } from "commander";
import { exportPrompts } from "../icl/export.ts";
import type { IclPrompt } from "../icl/prompts.ts";
import { sampleCalibrationPrompts } from "../icl/splits.ts";
import { sampleUnseenLabelPrompts } from "../icl/templates.ts";
import { AbftError } from "../gpu/errors.ts";
import { intOption, resolveWithProgress } from "./load.ts";
import { taskPrompts } from "./task_setup.ts";

const SETS = ["train", "test", "calibration", "unseen-label"] as const;

export function registerPrompts(program: Command): void {
  program
    .command("prompts")
    .description("write a task's prompts as JSONL (input_ids, label_positions, correct_positions, label, label_token_ids)")
    .requiredOption("--model <dir|repo>", "the model whose tokenizer builds the prompts")
    .requiredOption("--task <name|spec.json>", "built-in task or task spec file")
    .option("--data <path>", "folder with the task's files, or one data file")
    .option("--seed <n>", "seed of the split and the prompts", intOption("--seed"), 0)
    .option("--set <name>", `which prompts: ${SETS.join(", ")}`, "test")
    .option("--train-size <n>", "training prompts", intOption("--train-size", 1))
    .option("--test-queries <n>", "test queries (each with 2 demonstration sets)", intOption("--test-queries", 1))
    .option("--k <n>", "demonstrations per prompt", intOption("--k", 1))
    .requiredOption("--out <file>", "the JSONL file to write")
    .action(async (o) => {
      if (!(SETS as readonly string[]).includes(o.set)) throw new AbftError(`--set must be one of ${SETS.join(", ")}, got '${o.set}'`, "BAD_ARGS");
      const src = await resolveWithProgress(o.model);
      const tp = await taskPrompts(src, { task: o.task, data: o.data, seed: o.seed, k: o.k, trainSize: o.trainSize, testQueries: o.testQueries }, { train: true, test: true });
      let prompts: IclPrompt[];
      if (o.set === "train") prompts = tp.train;
      else if (o.set === "test") prompts = tp.test;
      else if (o.set === "calibration") prompts = tp.builder!.buildAll(tp.data!, sampleCalibrationPrompts(tp.split!, { k: tp.k, seed: o.seed }));
      else prompts = tp.builder!.buildAll(tp.data!, sampleUnseenLabelPrompts(tp.data!, tp.split!, { k: tp.k, seed: o.seed }));
      exportPrompts(o.out, prompts);
      console.log(`wrote ${prompts.length} ${o.set} prompts of ${tp.task.name} to ${o.out}`);
    });
}
