// ICL prompts: text, token ids, and the positions of the demonstrations' label tokens
// (../shared/docs/abft-method.md §1).
//
// Template (StaICC's default; `instruction` and `separator` vary only for template consistency):
//
//   {instruction}{in_prefix}{x_1} {label_prefix} {y_1}{sep} ... {in_prefix}{x_k} {label_prefix} {y_k}{sep}{in_prefix}{x_q} {label_prefix}
//
// with instruction "" and sep "\n" by default; the query ends with the label prefix, no trailing space.
//
// How label positions are found (never by searching for the label text): the prompt text is built
// piecewise, recording the UTF-16 span of each demonstration's " " + label word as it is appended;
// the whole prompt is then encoded ONCE (tokens can merge across piece boundaries, so encoding
// pieces separately could give other ids), and each span is mapped through the encoding's offsets
// to the one token that covers exactly it. A span covered by anything but exactly one token (or one
// whose id differs from the label word's own token) is an error naming the word and its tokens.
// Offsets that leave the leading space out (trim_offsets) are accepted when no token covers the space.
//
// Decisions:
// - every label word must be one token as " " + word (encoded alone, no special tokens); otherwise
//   an error names the word and its tokens.
// - special tokens: the ones the tokenizer puts BEFORE the text (BOS) are kept, so n_t counts them;
//   any it appends after the text (EOS) are dropped: the prediction is read at the last position,
//   which must be the label prefix's last token. (The leading ones are found once per builder on a
//   probe text; each prompt is then encoded without special tokens and gets them in front.)
// - context length (maxTokens, the model's positions): by default a prompt longer than maxTokens is
//   an error giving its length and the limit; with overflow "drop-demos" the earliest
//   demonstrations are dropped one at a time until it fits (that prompt then has fewer than k
//   label positions); a query that does not fit even alone is an error in both modes.
// - a prompt without a query label (content-free calibration prompts) has label -1 and no correct
//   positions.
import type { TextTokenizer, Encoding } from "../tokenize/tokenizer.ts";
import { AbftError } from "../gpu/errors.ts";
import type { TaskData, TaskSpec } from "./tasks.ts";
import {
  makeSplit,
  resolveSizes,
  sampleTestPrompts,
  sampleTrainPrompts,
  type PromptSpec,
  type SplitSizes,
  type TaskSplit,
} from "./splits.ts";

export interface PromptTemplate {
  /** text before the first demonstration ("" by default) */
  instruction: string;
  /** e.g. "sentence: " */
  inPrefix: string;
  /** e.g. "sentiment:" (no trailing space) */
  labelPrefix: string;
  /** after each demonstration's label word ("\n" by default) */
  separator: string;
}

/** The record that training and evaluation consume (and export.ts writes, one JSON object a line). */
export interface IclPrompt {
  /** [n_t] token ids, BOS included when the tokenizer adds it */
  input_ids: number[];
  /** [k] token index of each demonstration's label token, in order */
  label_positions: number[];
  /** the label positions whose label equals the query's (I+) */
  correct_positions: number[];
  /** the query's label index (-1: no query label, content-free prompts) */
  label: number;
  /** [L] the label words' token ids, in label order */
  label_token_ids: number[];
}

export interface BuiltPrompt extends IclPrompt {
  /** the prompt text */
  text: string;
  /** [k] label index of each demonstration (after any dropped by overflow "drop-demos") */
  demo_labels: number[];
}

export interface LabelledText {
  text: string;
  label: number;
}

export interface PromptOptions {
  /** default: the task's own template (taskTemplate) */
  template?: PromptTemplate;
  /** the model's context length in tokens; undefined: no limit */
  maxTokens?: number;
  /** what a prompt longer than maxTokens does (default "error") */
  overflow?: "error" | "drop-demos";
  /** add the tokenizer's leading special tokens (BOS) (default true) */
  addSpecialTokens?: boolean;
}

export class PromptError extends AbftError {
  constructor(message: string, code = "BAD_PROMPT", hint?: string) {
    super(message, code, hint);
  }
}

export function taskTemplate(task: TaskSpec): PromptTemplate {
  return { instruction: "", inPrefix: task.inPrefix, labelPrefix: task.labelPrefix, separator: "\n" };
}

/** The token id of " " + word for every label word; an error names a word that is not one token. */
export function labelTokenIds(tok: TextTokenizer, words: readonly string[]): number[] {
  return words.map((w) => {
    const enc = tok.encode(" " + w, { addSpecialTokens: false });
    if (enc.ids.length !== 1) {
      const parts = enc.ids.map((id, i) => `${id} ${JSON.stringify(enc.tokens[i])}`).join(", ");
      throw new PromptError(
        `label word "${w}" is not one token for ${tok.source}: " ${w}" is ${enc.ids.length} tokens [${parts}]`,
        "LABEL_NOT_ONE_TOKEN",
        "choose label words that are single tokens for this model (a task spec's label_words)",
      );
    }
    return enc.ids[0];
  });
}

/** The prompt text and the UTF-16 span [start, end) of each demonstration's " " + label word. */
export function renderPrompt(
  template: PromptTemplate,
  labelWords: readonly string[],
  demos: readonly LabelledText[],
  queryText: string,
): { text: string; labelSpans: [number, number][] } {
  let text = template.instruction;
  const labelSpans: [number, number][] = [];
  for (const d of demos) {
    const word = labelWords[d.label];
    if (word === undefined) throw new PromptError(`demonstration label ${d.label} is outside the ${labelWords.length} labels`);
    text += template.inPrefix + d.text + " " + template.labelPrefix;
    const start = text.length;
    text += " " + word;
    labelSpans.push([start, text.length]);
    text += template.separator;
  }
  text += template.inPrefix + queryText + " " + template.labelPrefix;
  return { text, labelSpans };
}

export class PromptBuilder {
  readonly labelTokenIds: number[];
  readonly template: PromptTemplate;
  private readonly maxTokens: number;
  private readonly overflow: "error" | "drop-demos";
  /** the tokenizer's leading special tokens (BOS), [] when it adds none */
  readonly leadingSpecialIds: number[];

  constructor(
    readonly tokenizer: TextTokenizer,
    readonly task: TaskSpec,
    private readonly opts: PromptOptions = {},
  ) {
    this.template = opts.template ?? taskTemplate(task);
    this.labelTokenIds = labelTokenIds(tokenizer, task.labelWords);
    if (new Set(this.labelTokenIds).size !== this.labelTokenIds.length) {
      throw new PromptError(`task ${task.name}: two label words share a token (${this.labelTokenIds.join(", ")})`, "LABEL_NOT_ONE_TOKEN");
    }
    this.maxTokens = opts.maxTokens ?? Infinity;
    this.overflow = opts.overflow ?? "error";
    // The special tokens the tokenizer puts before any text (BOS), found once on a probe text: the
    // prompt itself is encoded without special tokens (half the work) and gets these in front.
    // Trailing special tokens (EOS) are dropped (see the header).
    const probe = tokenizer.encode("x", { addSpecialTokens: opts.addSpecialTokens ?? true });
    const firstText = probe.specialTokensMask.indexOf(0);
    this.leadingSpecialIds = probe.ids.slice(0, firstText < 0 ? probe.ids.length : firstText);
  }

  /** The same builder with another template (template consistency). */
  withTemplate(template: PromptTemplate): PromptBuilder {
    return new PromptBuilder(this.tokenizer, this.task, { ...this.opts, template });
  }

  /** One prompt; query null: an empty, content-free query (label -1). */
  build(demos: readonly LabelledText[], query: LabelledText | null, queryText?: string): BuiltPrompt {
    const qText = queryText ?? query?.text ?? "";
    const qLabel = query?.label ?? -1;
    let ds = demos;
    for (;;) {
      const p = this.encodeOnce(ds, qText, qLabel);
      if (p.input_ids.length <= this.maxTokens) return p;
      if (this.overflow === "error" || ds.length === 0) {
        throw new PromptError(
          `task ${this.task.name}: a prompt with ${ds.length} demonstrations is ${p.input_ids.length} tokens, ` +
            `more than the model's ${this.maxTokens}` + (ds.length === 0 ? " (the query alone does not fit)" : ""),
          "PROMPT_TOO_LONG",
          ds.length === 0 ? "drop or shorten that example" : "use fewer demonstrations (k), or let prompts drop demonstrations that do not fit",
        );
      }
      ds = ds.slice(1);
    }
  }

  /** The prompt of a PromptSpec (example indices into data.examples; query -1: empty query). */
  buildSpec(data: TaskData, spec: PromptSpec): BuiltPrompt {
    const demos = spec.demos.map((i) => exampleAt(data, i));
    return this.build(demos, spec.query < 0 ? null : exampleAt(data, spec.query));
  }

  buildAll(data: TaskData, specs: readonly PromptSpec[]): BuiltPrompt[] {
    return specs.map((s) => this.buildSpec(data, s));
  }

  /**
   * Zhao et al.'s content-free prompts for one test prompt: its own demonstrations with each
   * content-free input ("N/A", "", "[MASK]" by default) as the query (label -1).
   */
  contentFreePrompts(data: TaskData, spec: PromptSpec, inputs: readonly string[] = ZHAO_CONTENT_FREE): BuiltPrompt[] {
    const demos = spec.demos.map((i) => exampleAt(data, i));
    return inputs.map((x) => this.build(demos, null, x));
  }

  private encodeOnce(demos: readonly LabelledText[], queryText: string, queryLabel: number): BuiltPrompt {
    const { text, labelSpans } = renderPrompt(this.template, this.task.labelWords, demos, queryText);
    const enc = this.tokenizer.encode(text, { addSpecialTokens: false });
    const lead = this.leadingSpecialIds;
    const positions = locateLabelTokens(enc, labelSpans, text, demos, this.task.labelWords, this.labelTokenIds, this.tokenizer.source)
      .map((p) => p + lead.length);
    const demoLabels = demos.map((d) => d.label);
    return {
      input_ids: [...lead, ...enc.ids],
      label_positions: positions,
      correct_positions: positions.filter((_, j) => demoLabels[j] === queryLabel),
      label: queryLabel,
      label_token_ids: [...this.labelTokenIds],
      text,
      demo_labels: demoLabels,
    };
  }
}

export const ZHAO_CONTENT_FREE: readonly string[] = ["N/A", "", "[MASK]"];

/** For each label span, the index of the one token covering exactly it (see the header). */
function locateLabelTokens(
  enc: Encoding,
  spans: readonly [number, number][],
  text: string,
  demos: readonly LabelledText[],
  words: readonly string[],
  labelIds: readonly number[],
  source: string,
): number[] {
  const out: number[] = [];
  const n = enc.ids.length;
  let t = 0;
  for (let d = 0; d < spans.length; d++) {
    const [s, e] = spans[d];
    const word = words[demos[d].label];
    // skip special tokens, zero-width tokens and tokens that end at or before the span
    while (t < n && (enc.specialTokensMask[t] === 1 || enc.offsets[t][1] <= s || enc.offsets[t][0] === enc.offsets[t][1])) t++;
    const cover: number[] = [];
    for (let i = t; i < n && enc.offsets[i][0] < e; i++) {
      if (enc.specialTokensMask[i] === 1 || enc.offsets[i][0] === enc.offsets[i][1]) continue;
      cover.push(i);
    }
    const one = cover.length === 1 ? cover[0] : -1;
    const ok =
      one >= 0 &&
      enc.offsets[one][1] === e &&
      (enc.offsets[one][0] === s || (enc.offsets[one][0] === s + 1 && text[s] === " "));
    if (!ok) {
      const shown = cover.map((i) => `${enc.ids[i]} ${JSON.stringify(enc.tokens[i])} [${enc.offsets[i][0]}, ${enc.offsets[i][1]})`).join(", ");
      throw new PromptError(
        `label word "${word}" of demonstration ${d + 1} is not one token in the prompt for ${source}: ` +
          `" ${word}" at [${s}, ${e}) is covered by ${cover.length} tokens [${shown}]`,
        "LABEL_NOT_ONE_TOKEN",
        "the text around the label merges with it; change the label prefix or the separator",
      );
    }
    if (enc.ids[one] !== labelIds[demos[d].label]) {
      throw new PromptError(
        `label word "${word}" of demonstration ${d + 1} is token ${enc.ids[one]} ${JSON.stringify(enc.tokens[one])} in the prompt, ` +
          `but ${labelIds[demos[d].label]} alone (${source})`,
        "LABEL_NOT_ONE_TOKEN",
      );
    }
    out.push(one);
    t = one + 1;
  }
  return out;
}

function exampleAt(data: TaskData, i: number): LabelledText {
  const ex = data.examples[i];
  if (ex === undefined) throw new PromptError(`example index ${i} is outside the task's ${data.examples.length} examples`);
  return ex;
}

// ---------------------------------------------------------------------------------------------
// The standard sets of the method: 512 training prompts and 1024 test inputs

export interface StandardSets {
  split: TaskSplit;
  sizes: Required<SplitSizes>;
  trainSpecs: PromptSpec[];
  testSpecs: PromptSpec[];
  train: BuiltPrompt[];
  test: BuiltPrompt[];
}

/** The split, the training prompts and the test inputs of a task for a seed (splits.ts). */
export function buildStandardSets(
  builder: PromptBuilder,
  data: TaskData,
  seed: number,
  sizes: Partial<SplitSizes> = {},
): StandardSets {
  const s = resolveSizes(data, sizes);
  const split = makeSplit(data, seed, s);
  const trainSpecs = sampleTrainPrompts(split, { trainPrompts: s.trainPrompts, k: s.k });
  const testSpecs = sampleTestPrompts(split, { k: s.k, demoSets: s.demoSets });
  return {
    split,
    sizes: s,
    trainSpecs,
    testSpecs,
    train: builder.buildAll(data, trainSpecs),
    test: builder.buildAll(data, testSpecs),
  };
}

/** The five fields of IclPrompt only (what export.ts writes). */
export function toIclPrompt(p: IclPrompt): IclPrompt {
  return {
    input_ids: [...p.input_ids],
    label_positions: [...p.label_positions],
    correct_positions: [...p.correct_positions],
    label: p.label,
    label_token_ids: [...p.label_token_ids],
  };
}
