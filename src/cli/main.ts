#!/usr/bin/env bun
// abft command-line entry. Every command lives in its own file under src/cli/; errors are caught
// once here, printed as one line (plus a hint), and turned into a non-zero exit code.
import { Command, CommanderError } from "commander";
import { AbftError } from "../gpu/errors.ts";
import { registerDoctor } from "./doctor.ts";
import { registerEval } from "./eval.ts";
import { registerModelCommands } from "./models.ts";
import { registerRun } from "./run.ts";
import { registerExport } from "./export.ts";
import { registerPrompts } from "./prompts.ts";
import { registerSweep } from "./sweep.ts";
import { registerInterpolate } from "./interpolate.ts";
import { registerPlot } from "./plot.ts";
import { VERSION } from "./version.ts";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("abft")
    .description(
      "Attention Behavior Fine-Tuning: fine-tune language models for in-context learning by training only W_Q and W_K, on WebGPU.",
    )
    .version(VERSION, "-V, --version")
    .option("--debug", "print stack traces of errors")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str) });
  registerRun(program);
  registerDoctor(program);
  registerModelCommands(program);
  registerEval(program);
  registerPrompts(program);
  registerExport(program);
  registerSweep(program);
  registerInterpolate(program);
  registerPlot(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its one-line message already; help and version exit 0
      return e.exitCode;
    }
    const debug = argv.includes("--debug");
    if (e instanceof AbftError) {
      console.error(`abft: error: ${e.message}`);
      if (e.hint) console.error(`abft: hint: ${e.hint}`);
    } else {
      console.error(`abft: error: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (debug && e instanceof Error && e.stack) console.error(e.stack);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv);
  process.exit(code);
}
