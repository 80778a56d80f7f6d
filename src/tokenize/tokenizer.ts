// Text tokenizers of HF checkpoints, through @huggingface/tokenizers (a JS port of HF tokenizers).
//
// Sources, in order: tokenizer.json; or, for GPT-2-style checkpoints, vocab.json + merges.txt, from
// which a byte-level BPE tokenizer.json is built (the same layout transformers' GPT-2 converter
// writes) and handed to the same library. tokenizer_config.json, when present, gives add_bos_token,
// the bos/eos tokens and clean_up_tokenization_spaces.
//
// The library returns ids and token strings but no offsets, so offsets are computed here: every
// token's bytes (byte-level alphabet decoded, or "▁" → space and <0xNN> → byte for SentencePiece
// BPE) are aligned against the UTF-8 bytes of the (normalised) text. A token that covers part of a
// character (byte-level BPE splits emoji) gets the whole character, as HF tokenizers (Rust) does.
// Two offset units are returned:
//   offsets:     JS string indices (UTF-16 code units): text.slice(start, end) is the token's text
//   charOffsets: Unicode code points, as HF tokenizers' Python binding (and so the fixtures) report
// Tokens added by the post-processor (BOS, template tokens) get [0, 0], as in HF.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { AbftError } from "../gpu/errors.ts";

export type Offset = [number, number];

export interface Encoding {
  ids: number[];
  /** token strings as in the vocabulary (byte-level: "Ġnew") */
  tokens: string[];
  /** [start, end) in JS string indices (UTF-16 code units) of the original text */
  offsets: Offset[];
  /** [start, end) in Unicode code points of the original text (what HF's Python API returns) */
  charOffsets: Offset[];
  /** 1 where the token was added by the post-processor / BOS handling, not taken from the text */
  specialTokensMask: number[];
}

export interface EncodeOptions {
  /** add BOS / template tokens as the tokenizer's post-processor and tokenizer_config say (default true) */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface TokenizerOptions {
  /** overrides the BOS id found in tokenizer_config.json (e.g. config.json's bos_token_id) */
  bosTokenId?: number | null;
}

export class TokenizerError extends AbftError {
  constructor(message: string, code = "BAD_TOKENIZER", hint?: string) {
    super(message, code, hint);
  }
}

type Json = Record<string, any>;

export class TextTokenizer {
  /** ids run over [0, vocabSize): the largest id of the vocabulary or added tokens, plus one */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** tokenizer_config.json's add_bos_token, when it says (undefined: the post-processor decides) */
  readonly addBosToken: boolean | undefined;
  private readonly hf: HfTokenizer;
  private readonly addedIds: Set<number>;
  private readonly addedContent = new Map<number, string>();
  private readonly byteLevel: boolean;
  private readonly unicodeForms: string[];
  private readonly lowercase: boolean;

  private constructor(
    /** where it was loaded from (for messages) */
    readonly source: string,
    tokenizerJson: Json,
    tokenizerConfig: Json,
    opts: TokenizerOptions,
  ) {
    try {
      this.hf = new HfTokenizer(tokenizerJson, {
        ...tokenizerConfig,
        clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces ?? false,
      });
    } catch (e) {
      throw new TokenizerError(`${source}: cannot build the tokenizer (${(e as Error).message})`);
    }
    const added: Json[] = tokenizerJson.added_tokens ?? [];
    this.addedIds = new Set(added.map((t) => t.id));
    for (const t of added) this.addedContent.set(t.id, t.content);
    let maxId = -1;
    const vocab = tokenizerJson.model?.vocab;
    if (vocab && typeof vocab === "object" && !Array.isArray(vocab)) {
      for (const id of Object.values(vocab) as number[]) if (id > maxId) maxId = id;
    } else if (Array.isArray(vocab)) {
      maxId = vocab.length - 1; // Unigram: [[piece, score], ...]
    }
    for (const t of added) if (t.id > maxId) maxId = t.id;
    this.vocabSize = maxId + 1;
    this.byteLevel = hasType(tokenizerJson.pre_tokenizer, "ByteLevel") || hasType(tokenizerJson.decoder, "ByteLevel");
    this.unicodeForms = collectTypes(tokenizerJson.normalizer).filter((t) => ["NFC", "NFD", "NFKC", "NFKD"].includes(t));
    this.lowercase = collectTypes(tokenizerJson.normalizer).includes("Lowercase");

    const idOf = (v: unknown): number | null => {
      const s = typeof v === "string" ? v : v && typeof v === "object" ? (v as Json).content : undefined;
      if (typeof s !== "string") return null;
      return this.hf.token_to_id(s) ?? null;
    };
    this.bosTokenId = opts.bosTokenId !== undefined ? opts.bosTokenId : idOf(tokenizerConfig.bos_token);
    this.eosTokenId = idOf(tokenizerConfig.eos_token);
    this.addBosToken = typeof tokenizerConfig.add_bos_token === "boolean" ? tokenizerConfig.add_bos_token : undefined;
  }

  /** A tokenizer from tokenizer.json content (and tokenizer_config.json content, if any). */
  static fromJson(tokenizerJson: Json, tokenizerConfig: Json = {}, source = "tokenizer.json", opts: TokenizerOptions = {}): TextTokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== "object" || !tokenizerJson.model) {
      throw new TokenizerError(`${source}: not a tokenizer.json (no "model")`);
    }
    return new TextTokenizer(source, tokenizerJson, tokenizerConfig, opts);
  }

  /**
   * A byte-level BPE tokenizer (GPT-2) from vocab.json and merges.txt, built as the tokenizer.json
   * that transformers' GPT-2 converter writes: ByteLevel pre-tokenizer (GPT-2 regex, no prefix
   * space), BPE model, ByteLevel decoder, and <|endoftext|> as a special added token.
   */
  static fromVocabMerges(vocabPath: string, mergesPath: string, tokenizerConfig: Json = {}, opts: TokenizerOptions = {}): TextTokenizer {
    const vocab = readJson(vocabPath) as Record<string, number>;
    if (!existsSync(mergesPath)) throw new TokenizerError(`${mergesPath}: no such file`, "MISSING_FILE");
    const merges = readFileSync(mergesPath, "utf8")
      .split("\n")
      .map((l) => l.replace(/\r$/, ""))
      .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith("#version")));
    for (const m of merges) {
      if (m.split(" ").length !== 2) throw new TokenizerError(`${mergesPath}: bad merge line ${JSON.stringify(m)}`);
    }
    const addPrefixSpace = tokenizerConfig.add_prefix_space === true;
    const byteLevel = { type: "ByteLevel", add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true };
    const added: Json[] = [];
    const eot = "<|endoftext|>";
    if (vocab[eot] !== undefined) {
      added.push({ id: vocab[eot], content: eot, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
    }
    const json = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: "",
        end_of_word_suffix: "",
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
    const cfg = { bos_token: eot, eos_token: eot, ...tokenizerConfig };
    return new TextTokenizer(`${vocabPath} + ${mergesPath}`, json, cfg, opts);
  }

  /**
   * Loads from a checkpoint folder (tokenizer.json, else vocab.json + merges.txt; plus
   * tokenizer_config.json / special_tokens_map.json) or from a tokenizer.json file.
   */
  static load(path: string, opts: TokenizerOptions = {}): TextTokenizer {
    if (!existsSync(path)) throw new TokenizerError(`${path}: no such file or folder`, "MISSING_FILE");
    if (!statSync(path).isDirectory()) {
      return TextTokenizer.fromJson(readJson(path), {}, path, opts);
    }
    const cfgPath = join(path, "tokenizer_config.json");
    const mapPath = join(path, "special_tokens_map.json");
    const cfg: Json = {
      ...(existsSync(mapPath) ? readJson(mapPath) : {}),
      ...(existsSync(cfgPath) ? readJson(cfgPath) : {}),
    };
    const tj = join(path, "tokenizer.json");
    if (existsSync(tj)) return TextTokenizer.fromJson(readJson(tj), cfg, tj, opts);
    const vj = join(path, "vocab.json");
    const mt = join(path, "merges.txt");
    if (existsSync(vj) && existsSync(mt)) return TextTokenizer.fromVocabMerges(vj, mt, cfg, opts);
    const spm = existsSync(join(path, "tokenizer.model")) ? " (a SentencePiece tokenizer.model alone is not supported)" : "";
    throw new TokenizerError(
      `${path}: no tokenizer.json, nor vocab.json + merges.txt${spm}`,
      "MISSING_TOKENIZER",
      "download the model's tokenizer.json, or pass --tokenizer <file>",
    );
  }

  encode(text: string, opts: EncodeOptions = {}): Encoding {
    const addSpecial = opts.addSpecialTokens ?? true;
    const plain = this.hf.encode(text, { add_special_tokens: false });
    const textOffsets = this.alignOffsets(text, plain.ids, plain.tokens);
    let before: number[] = [];
    let after: number[] = [];
    if (addSpecial) {
      const full = this.hf.encode(text, { add_special_tokens: true }).ids;
      const k = plain.ids.length ? findRun(full, plain.ids) : full.length; // empty text: all added tokens lead
      if (k < 0) throw new TokenizerError(`${this.source}: the post-processor changed the text's tokens; offsets cannot be given`);
      before = full.slice(0, k);
      after = full.slice(k + plain.ids.length);
      const bos = this.bosTokenId;
      if (bos !== null && this.addBosToken === true && (before.length ? before[0] : plain.ids[0]) !== bos) before.unshift(bos);
      if (bos !== null && this.addBosToken === false && before[0] === bos) before.shift();
    }
    const ids = [...before, ...plain.ids, ...after];
    const zero = (n: number): Offset[] => Array.from({ length: n }, () => [0, 0] as Offset);
    const offsets = [...zero(before.length), ...textOffsets, ...zero(after.length)];
    const tokens = [...before.map((id) => this.idToToken(id) ?? ""), ...plain.tokens, ...after.map((id) => this.idToToken(id) ?? "")];
    const specialTokensMask = [...before.map(() => 1), ...plain.ids.map(() => 0), ...after.map(() => 1)];
    return { ids, tokens, offsets, charOffsets: toCodePointOffsets(text, offsets), specialTokensMask };
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize}) of ${this.source}`, "BAD_TOKEN_ID");
      }
    }
    if (list.length === 0) return "";
    return this.hf.decode(list, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Offsets (UTF-16) of the text tokens, by aligning each token's bytes with the text's. */
  private alignOffsets(text: string, ids: number[], tokens: string[]): Offset[] {
    const view = normalizedView(text, this.unicodeForms, this.lowercase);
    const { bytes, unitStart, unitEnd } = utf8Indexed(view.text);
    const out: Offset[] = [];
    let p = 0;
    for (let i = 0; i < ids.length; i++) {
      const piece = this.pieceBytes(ids[i], tokens[i]);
      let bs = p;
      let be = p;
      if (piece.length === 0) {
        // nothing to place
      } else if (matchAt(bytes, p, piece)) {
        be = p + piece.length;
      } else if (piece[0] === 0x20 && matchAt(bytes, p, piece.subarray(1))) {
        be = p + piece.length - 1; // a space the normaliser / pre-tokenizer prepended
      } else {
        const q = indexOfBytes(bytes, piece, p);
        if (q >= 0) {
          bs = q;
          be = q + piece.length;
        }
      }
      p = be;
      // bytes → UTF-16 units of the normalised text (whole characters) → the original text
      let s: number;
      let e: number;
      if (be > bs) {
        s = unitStart[bs];
        e = unitEnd[be - 1];
      } else {
        s = e = bs < bytes.length ? unitStart[bs] : view.text.length;
      }
      out.push(view.toOriginal(s, e));
    }
    return out;
  }

  private pieceBytes(id: number, token: string): Uint8Array {
    const added = this.addedContent.get(id);
    if (added !== undefined) return UTF8.encode(added);
    if (this.byteLevel) {
      const out: number[] = [];
      for (const ch of token) {
        const b = UNICODE_TO_BYTE.get(ch);
        if (b !== undefined) out.push(b);
        else for (const x of UTF8.encode(ch)) out.push(x);
      }
      return new Uint8Array(out);
    }
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
    if (m) return new Uint8Array([parseInt(m[1], 16)]);
    return UTF8.encode(token.replaceAll("\u2581", " "));
  }
}

/** Loads a tokenizer from a checkpoint folder or a tokenizer.json file (see TextTokenizer.load). */
export function loadTokenizer(path: string, opts: TokenizerOptions = {}): TextTokenizer {
  return TextTokenizer.load(path, opts);
}

// ---------------------------------------------------------------------------------------------
// Offset units

/** UTF-16 offsets → code point offsets (HF Python's "characters"). */
export function toCodePointOffsets(text: string, offsets: Offset[]): Offset[] {
  const cp = codePointIndex(text);
  return offsets.map(([s, e]) => [cp[s], cp[e]] as Offset);
}

/** Code point offsets (as in HF Python / the fixtures) → UTF-16 offsets (JS string indices). */
export function toUtf16Offsets(text: string, offsets: Offset[]): Offset[] {
  const units: number[] = [];
  let u = 0;
  for (const ch of text) {
    units.push(u);
    u += ch.length;
  }
  units.push(u);
  return offsets.map(([s, e]) => [units[s], units[e]] as Offset);
}

/** For each UTF-16 index 0..len, the number of code points before it. */
function codePointIndex(text: string): Int32Array {
  const cp = new Int32Array(text.length + 1);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    cp[i] = n;
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        cp[i + 1] = n; // inside a surrogate pair: same character
        i++;
      }
    }
    n++;
  }
  cp[text.length] = n;
  return cp;
}

// ---------------------------------------------------------------------------------------------
// Alignment helpers

const UTF8 = new TextEncoder();

/** GPT-2's byte ↔ printable-character table (bytes_to_unicode in openai/gpt-2 encoder.py), inverted. */
const UNICODE_TO_BYTE: Map<string, number> = (() => {
  const m = new Map<string, number>();
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (printable(b)) m.set(String.fromCharCode(b), b);
    else m.set(String.fromCharCode(256 + extra++), b);
  }
  return m;
})();

/** UTF-8 bytes of s, and for each byte the [start, end) UTF-16 units of the character it belongs to. */
function utf8Indexed(s: string): { bytes: Uint8Array; unitStart: Int32Array; unitEnd: Int32Array } {
  const bytes = UTF8.encode(s);
  const unitStart = new Int32Array(bytes.length);
  const unitEnd = new Int32Array(bytes.length);
  let b = 0;
  let u = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < n; k++) {
      unitStart[b + k] = u;
      unitEnd[b + k] = u + ch.length;
    }
    b += n;
    u += ch.length;
  }
  return { bytes, unitStart, unitEnd };
}

/**
 * The text as the normaliser sees it (Unicode forms, lowercase), with a map back to the original.
 * Each cluster (a character and its combining marks) is normalised on its own, so every normalised
 * code unit maps to the original cluster it came from.
 */
function normalizedView(text: string, forms: string[], lowercase: boolean) {
  const apply = (s: string) => {
    for (const f of forms) s = s.normalize(f);
    return lowercase ? s.toLowerCase() : s;
  };
  if (apply(text) === text) {
    return { text, toOriginal: (s: number, e: number): Offset => [s, e] };
  }
  const parts: string[] = [];
  const origStart: number[] = [];
  const origEnd: number[] = [];
  for (const m of text.matchAll(/\P{M}\p{M}*|\p{M}+/gsu)) {
    const n = apply(m[0]);
    parts.push(n);
    for (let k = 0; k < n.length; k++) {
      origStart.push(m.index!);
      origEnd.push(m.index! + m[0].length);
    }
  }
  const norm = parts.join("");
  return {
    text: norm,
    toOriginal: (s: number, e: number): Offset => {
      if (e <= s) {
        const o = s < norm.length ? origStart[s] : text.length;
        return [o, o];
      }
      return [origStart[s], origEnd[e - 1]];
    },
  };
}

function matchAt(hay: Uint8Array, at: number, needle: Uint8Array): boolean {
  if (at + needle.length > hay.length) return false;
  for (let i = 0; i < needle.length; i++) if (hay[at + i] !== needle[i]) return false;
  return true;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  for (let i = from; i + needle.length <= hay.length; i++) if (matchAt(hay, i, needle)) return i;
  return -1;
}

/** First k such that full[k .. k+run.length) equals run (0 for an empty run). */
function findRun(full: number[], run: number[]): number {
  outer: for (let k = 0; k + run.length <= full.length; k++) {
    for (let i = 0; i < run.length; i++) if (full[k + i] !== run[i]) continue outer;
    return k;
  }
  return -1;
}

function collectTypes(node: unknown): string[] {
  if (!node || typeof node !== "object") return [];
  const n = node as Json;
  const here = typeof n.type === "string" ? [n.type] : [];
  const kids = [...(n.normalizers ?? []), ...(n.pretokenizers ?? []), ...(n.decoders ?? [])];
  return [...here, ...kids.flatMap(collectTypes)];
}

function hasType(node: unknown, type: string): boolean {
  return collectTypes(node).includes(type);
}

function readJson(path: string): Json {
  if (!existsSync(path)) throw new TokenizerError(`${path}: no such file`, "MISSING_FILE");
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
