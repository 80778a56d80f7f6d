// `abft export --run DIR --out DIR2`: a Hugging Face model folder with the trained W_Q/W_K merged.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { exportMerged } from "../abft/export.ts";
import { AbftError } from "../gpu/errors.ts";
import { resolveWithProgress } from "./load.ts";

export function registerExport(program: Command): void {
  program
    .command("export")
    .description("write a run as a complete Hugging Face model folder, trained W_Q/W_K merged in")
    .requiredOption("--run <dir>", "an abft run directory")
    .requiredOption("--out <dir>", "the model folder to create (must not exist or be empty)")
    .action(async (o: { run: string; out: string }) => {
      if (!existsSync(join(o.run, "abft.safetensors"))) throw new AbftError(`--run ${o.run}: no abft.safetensors (not a finished abft run)`, "BAD_RUN_DIR");
      const src = await resolveWithProgress(o.run);
      const files = exportMerged(src.dir, src.config, src.trainedFile!, o.out, { abft_run: o.run, base_model: src.spec });
      console.log(`wrote ${o.out}: ${files.join(", ")}`);
    });
}
