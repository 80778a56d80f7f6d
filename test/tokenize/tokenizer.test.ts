// Tokenizers against HF tokenizers (Rust) reference encodings: ids with and without special tokens,
// offsets (code points as the reference gives them, and UTF-16 JS indices), label-word ids; GPT-2
// from vocab.json + merges.txt; BOS handling from tokenizer_config.json and the post-processor;
// normalisation (Qwen's NFC) mapped back to the original text; errors.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TextTokenizer, TokenizerError, loadTokenizer, toCodePointOffsets, toUtf16Offsets, type Offset } from "../../src/tokenize/tokenizer.ts";
import { SHARED } from "../helpers.ts";

const TK = join(SHARED, "fixtures/tokenizers");
const REF = JSON.parse(readFileSync(join(TK, "reference_encodings.json"), "utf8")) as Record<
  string,
  { prompts: { text: string; ids: number[]; offsets: Offset[]; ids_with_special_tokens: number[] }[]; label_tokens: Record<string, number[]> }
>;

const toks: Record<string, TextTokenizer> = {};
beforeAll(() => {
  toks["gpt2"] = loadTokenizer(join(TK, "gpt2/tokenizer.json"));
  toks["gpt2 (vocab.json + merges.txt)"] = TextTokenizer.fromVocabMerges(join(TK, "gpt2/vocab.json"), join(TK, "gpt2/merges.txt"));
  toks["babygpt2"] = loadTokenizer(join(SHARED, "models/babygpt2"));
  toks["llama3"] = loadTokenizer(join(TK, "llama3"));
  toks["qwen"] = loadTokenizer(join(TK, "qwen"));
}, 120_000); // parsing the 9-11 MB tokenizer.json files takes seconds on a busy 2-core machine

const CASES: [string, string][] = [
  ["gpt2", "gpt2"],
  ["gpt2 (vocab.json + merges.txt)", "gpt2"],
  ["babygpt2", "gpt2"],
  ["llama3", "llama3"],
  ["qwen", "qwen"],
];

describe("reference encodings (HF tokenizers, Rust)", () => {
  for (const [name, ref] of CASES) {
    test(`${name}: ids, ids with special tokens, offsets, label words`, () => {
      const tok = toks[name];
      for (const p of REF[ref].prompts) {
        const e = tok.encode(p.text, { addSpecialTokens: false });
        expect(e.ids).toEqual(p.ids);
        // the reference counts code points (Python str indices); JS strings index UTF-16 units
        expect(e.charOffsets).toEqual(p.offsets);
        expect(e.offsets).toEqual(toUtf16Offsets(p.text, p.offsets));
        expect(tok.encode(p.text).ids).toEqual(p.ids_with_special_tokens);
        // offsets run through the text in order and cover all of it
        let end = 0;
        for (const [s, t] of e.offsets) {
          expect(s).toBeLessThanOrEqual(end);
          expect(t).toBeGreaterThan(s);
          end = Math.max(end, t);
        }
        expect(end).toBe(p.text.length);
        expect(tok.decode(e.ids)).toBe(p.text);
      }
      for (const [word, ids] of Object.entries(REF[ref].label_tokens)) {
        expect(tok.encode(word, { addSpecialTokens: false }).ids).toEqual(ids);
      }
    });
  }

  test("the emoji prompt: tokens that split a character get the whole character", () => {
    const p = REF.gpt2.prompts.find((q) => q.text.includes("😂"))!;
    const e = toks["gpt2"].encode(p.text, { addSpecialTokens: false });
    const i = e.ids.indexOf(30325); // " " + the first 3 bytes of 😂
    expect(e.charOffsets.slice(i, i + 4)).toEqual([[31, 33], [32, 33], [33, 34], [33, 34]]);
    expect(e.offsets.slice(i, i + 4)).toEqual([[31, 34], [32, 34], [34, 36], [34, 36]]);
    expect(p.text.slice(...e.offsets[i + 2])).toBe("😂");
  });
});

describe("special tokens and BOS", () => {
  test("GPT-2 adds no BOS; vocab.json + merges.txt knows <|endoftext|> as a special token", () => {
    expect(toks["babygpt2"].encode("hello world").ids).toEqual([31373, 995]);
    const vm = toks["gpt2 (vocab.json + merges.txt)"];
    expect(vm.bosTokenId).toBe(50256);
    expect(vm.eosTokenId).toBe(50256);
    expect(vm.vocabSize).toBe(50257);
    const e = vm.encode("a<|endoftext|>b", { addSpecialTokens: false });
    expect(e.ids).toEqual([64, 50256, 65]);
    expect(e.offsets).toEqual([[0, 1], [1, 14], [14, 15]]);
  });

  test("add_bos_token: true in tokenizer_config.json prepends BOS with offsets [0, 0]", () => {
    const j = JSON.parse(readFileSync(join(TK, "llama3/tokenizer.json"), "utf8"));
    const tok = TextTokenizer.fromJson(j, { bos_token: "<|begin_of_text|>", add_bos_token: true });
    const p = REF.llama3.prompts[0];
    const e = tok.encode(p.text);
    expect(e.ids).toEqual([128000, ...p.ids]);
    expect(e.offsets[0]).toEqual([0, 0]);
    expect(e.specialTokensMask.slice(0, 2)).toEqual([1, 0]);
    expect(e.charOffsets.slice(1)).toEqual(p.offsets);
    expect(tok.encode(p.text, { addSpecialTokens: false }).ids).toEqual(p.ids);
  }, 60_000);

  test("a TemplateProcessing post-processor (as Meta's Llama-3 ships) adds BOS; add_bos_token: false removes it", () => {
    const j = JSON.parse(readFileSync(join(TK, "llama3/tokenizer.json"), "utf8"));
    const bos = { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } };
    j.post_processor = {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [bos, { Sequence: { id: "A", type_id: 0 } }],
          pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { ...bos, SpecialToken: { ...bos.SpecialToken, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } },
        },
      ],
    };
    const text = "Hi 😂 there";
    const tok = TextTokenizer.fromJson(j, { bos_token: "<|begin_of_text|>" });
    const e = tok.encode(text);
    expect(e.ids[0]).toBe(128000);
    expect(e.ids.slice(1)).toEqual(toks["llama3"].encode(text).ids);
    expect(e.offsets[0]).toEqual([0, 0]);
    const off = TextTokenizer.fromJson(j, { bos_token: "<|begin_of_text|>", add_bos_token: false });
    expect(off.encode(text).ids).toEqual(toks["llama3"].encode(text).ids);
  }, 60_000);

  test("a special token written in the text is one token spanning exactly its characters", () => {
    const text = "x <|endoftext|> y";
    const e = toks["qwen"].encode(text);
    const i = e.ids.indexOf(151643);
    expect(i).toBeGreaterThan(0);
    expect(text.slice(...e.offsets[i])).toBe("<|endoftext|>");
  });
});

describe("normalisation and offset units", () => {
  test("Qwen's NFC: a decomposed é encodes like the composed one; offsets point into the original", () => {
    const decomposed = "Cafe\u0301 ok";
    const e = toks["qwen"].encode(decomposed);
    expect(e.ids).toEqual(toks["qwen"].encode("Café ok").ids);
    const slices = e.offsets.map(([s, t]) => decomposed.slice(s, t));
    expect(slices.join("")).toBe(decomposed);
    expect(slices).toContain("e\u0301");
  });

  test("UTF-16 ↔ code point offsets", () => {
    const text = "a😂b😂😂c";
    const cp: Offset[] = [[0, 1], [1, 2], [2, 3], [3, 5], [5, 6]];
    const u16 = toUtf16Offsets(text, cp);
    expect(u16).toEqual([[0, 1], [1, 3], [3, 4], [4, 8], [8, 9]]);
    expect(toCodePointOffsets(text, u16)).toEqual(cp);
  });

  test("empty text", () => {
    const e = toks["llama3"].encode("");
    expect(e.ids).toEqual([]);
    expect(e.offsets).toEqual([]);
    expect(toks["llama3"].decode([])).toBe("");
  });
});

describe("errors", () => {
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(TokenizerError);
      expect((e as TokenizerError).message).not.toContain("\n");
      return (e as TokenizerError).code;
    }
    throw new Error("expected a TokenizerError");
  };

  test("missing path, folder without tokenizer files, ids outside the vocabulary", () => {
    expect(code(() => loadTokenizer(join(TK, "no-such-tokenizer")))).toBe("MISSING_FILE");
    const empty = join(mkdtempSync(join(tmpdir(), "abft-tok-")), "empty");
    mkdirSync(empty);
    expect(code(() => loadTokenizer(empty))).toBe("MISSING_TOKENIZER");
    expect(code(() => toks["gpt2"].decode([50257]))).toBe("BAD_TOKEN_ID");
    expect(code(() => toks["gpt2"].decode([-1]))).toBe("BAD_TOKEN_ID");
    expect(code(() => TextTokenizer.fromJson({ version: "1.0" }))).toBe("BAD_TOKENIZER");
  });
});
