// Prompts as JSONL (`abft prompts` writes them; training and evaluation can read them back):
// one JSON object a line, keys in this order:
//
//   {"input_ids":[...],"label_positions":[...],"correct_positions":[...],"label":0,"label_token_ids":[...]}
//
// Export writes exactly these five fields (extra fields of a BuiltPrompt, such as its text, are left
// out), "\n" after every line. Import accepts blank lines and extra keys (ignored), and checks every
// line, with its line number in the error:
// - input_ids: a non-empty array of non-negative integers (below vocabSize when given);
// - label_token_ids: a non-empty array of distinct non-negative integers;
// - label_positions: strictly increasing token indices below the last position, each holding one of
//   the label tokens;
// - label: an integer in [0, L), or -1 (no query label: content-free prompts);
// - correct_positions: exactly the label positions whose token is label_token_ids[label], in order
//   (empty when label is -1).
// A round trip export → import gives back the same prompts.
import { readFileSync, writeFileSync } from "node:fs";
import { AbftError } from "../gpu/errors.ts";
import type { IclPrompt } from "./prompts.ts";

export class PromptFileError extends AbftError {
  constructor(message: string) {
    super(message, "BAD_PROMPT_FILE");
  }
}

/** One prompt as its JSONL line (no newline). */
export function promptToJsonLine(p: IclPrompt): string {
  return JSON.stringify({
    input_ids: p.input_ids,
    label_positions: p.label_positions,
    correct_positions: p.correct_positions,
    label: p.label,
    label_token_ids: p.label_token_ids,
  });
}

export function formatPromptsJsonl(prompts: readonly IclPrompt[]): string {
  let out = "";
  for (const p of prompts) out += promptToJsonLine(p) + "\n";
  return out;
}

export function exportPrompts(path: string, prompts: readonly IclPrompt[]): void {
  writeFileSync(path, formatPromptsJsonl(prompts));
}

export interface ImportOptions {
  /** ids must be below this (the model's vocabulary size) */
  vocabSize?: number;
}

/** Parses and validates prompts JSONL text; `source` names the file in errors. */
export function parsePromptsJsonl(text: string, source = "prompts", opts: ImportOptions = {}): IclPrompt[] {
  const out: IclPrompt[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === "") continue;
    const where = `${source}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new PromptFileError(`${where}: invalid JSON (${(e as Error).message})`);
    }
    out.push(validatePrompt(v, where, opts));
  }
  return out;
}

export function importPrompts(path: string, opts: ImportOptions = {}): IclPrompt[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new PromptFileError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parsePromptsJsonl(text, path, opts);
}

/** Checks one parsed line (see the header) and returns it as an IclPrompt. */
export function validatePrompt(v: unknown, where: string, opts: ImportOptions = {}): IclPrompt {
  const fail = (msg: string): never => {
    throw new PromptFileError(`${where}: ${msg}`);
  };
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail("expected a JSON object");
  const o = v as Record<string, unknown>;
  const ints = (key: string, nonEmpty: boolean): number[] => {
    const a = o[key];
    if (a === undefined) fail(`missing "${key}"`);
    if (!Array.isArray(a)) fail(`"${key}" must be an array`);
    const arr = a as unknown[];
    if (nonEmpty && arr.length === 0) fail(`"${key}" is empty`);
    arr.forEach((x, j) => {
      if (typeof x !== "number" || !Number.isInteger(x) || x < 0) fail(`"${key}"[${j}] = ${JSON.stringify(x)} is not a non-negative integer`);
    });
    return arr as number[];
  };
  const ids = ints("input_ids", true);
  const labelIds = ints("label_token_ids", true);
  const positions = ints("label_positions", false);
  const correct = ints("correct_positions", false);
  if (opts.vocabSize !== undefined) {
    ids.forEach((x, j) => {
      if (x >= opts.vocabSize!) fail(`"input_ids"[${j}] = ${x} is outside the vocabulary (${opts.vocabSize})`);
    });
    labelIds.forEach((x, j) => {
      if (x >= opts.vocabSize!) fail(`"label_token_ids"[${j}] = ${x} is outside the vocabulary (${opts.vocabSize})`);
    });
  }
  if (new Set(labelIds).size !== labelIds.length) fail(`"label_token_ids" has a repeated id`);
  const label = o.label;
  if (typeof label !== "number" || !Number.isInteger(label) || label < -1 || label >= labelIds.length) {
    fail(`"label" = ${JSON.stringify(label)} must be an integer in [0, ${labelIds.length}) or -1`);
  }
  positions.forEach((p, j) => {
    if (p >= ids.length - 1) fail(`"label_positions"[${j}] = ${p} is not before the last position ${ids.length - 1}`);
    if (j > 0 && p <= positions[j - 1]) fail(`"label_positions" must be strictly increasing (${positions[j - 1]}, ${p})`);
    if (!labelIds.includes(ids[p])) fail(`"label_positions"[${j}] = ${p} holds token ${ids[p]}, not a label token (${labelIds.join(", ")})`);
  });
  const want = label === -1 ? [] : positions.filter((p) => ids[p] === labelIds[label as number]);
  if (correct.length !== want.length || correct.some((p, j) => p !== want[j])) {
    fail(`"correct_positions" = [${correct.join(", ")}] but the label positions holding label ${label}'s token are [${want.join(", ")}]`);
  }
  return { input_ids: ids, label_positions: positions, correct_positions: correct, label: label as number, label_token_ids: labelIds };
}
