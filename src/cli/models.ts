// Model-side commands: `abft pull` (download into the HF cache), `abft tokenize`, `abft inspect`
// (one forward pass: last-position logits, the last token's attention row of every head, hidden states).
import type { Command } from "commander";
import { disposeForward, makeBatch } from "../../models/common.ts";
import { AbftError } from "../gpu/errors.ts";
import { tokenizerFor } from "../io/model_source.ts";
import { noGradAsync } from "../tensor/autodiff.ts";
import { lmHead } from "../tensor/ops.ts";
import { fromArray, scope } from "../tensor/tensor.ts";
import { loadTokenizer } from "../tokenize/tokenizer.ts";
import { openModel, resolveWithProgress } from "./load.ts";

function parseIds(v: string): number[] {
  const ids = v.split(",").map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new AbftError(`--ids '${v}': expected comma-separated token ids`, "BAD_ARGS");
  return ids;
}

export function registerModelCommands(program: Command): void {
  program
    .command("pull <repo-id>")
    .description("download a model's config, tokenizer and safetensors into the Hugging Face cache")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .action(async (repo: string, o: { revision: string }) => {
      const src = await resolveWithProgress(repo, o.revision);
      console.log(`${repo}@${src.revision}: ${src.dir}`);
    });

  program
    .command("tokenize")
    .description("print the token ids and character offsets of a text")
    .option("--model <dir|repo>", "the model whose tokenizer to use")
    .option("--tokenizer <file>", "a tokenizer.json (or a folder with one, or with vocab.json + merges.txt)")
    .requiredOption("--text <text>", "the text to tokenize")
    .option("--no-special", "do not add special tokens (BOS)")
    .option("--json", "print JSON: ids, offsets (code points, as HF), tokens")
    .action(async (o: { model?: string; tokenizer?: string; text: string; special: boolean; json?: boolean }) => {
      if (!o.model === !o.tokenizer) throw new AbftError("give exactly one of --model and --tokenizer", "BAD_ARGS");
      const tok = o.tokenizer ? loadTokenizer(o.tokenizer) : tokenizerFor(await resolveWithProgress(o.model!));
      const enc = tok.encode(o.text, { addSpecialTokens: o.special });
      if (o.json) console.log(JSON.stringify({ ids: enc.ids, offsets: enc.charOffsets, tokens: enc.tokens }));
      else enc.ids.forEach((id, i) => console.log(`${String(i).padStart(4)}  ${String(id).padStart(7)}  ${JSON.stringify(enc.tokens[i])}  [${enc.charOffsets[i].join(", ")})`));
    });

  program
    .command("inspect")
    .description("run the model once: last-position logits and every head's last-row attention")
    .requiredOption("--model <dir|repo|run>", "model folder, hub repo id, or abft run directory")
    .option("--ids <ids>", "comma-separated token ids", parseIds)
    .option("--text <text>", "text to tokenize (with the model's special tokens)")
    .option("--hidden", "also print the hidden states (embeddings, each layer, the last after the final norm)")
    .option("--top <n>", "top tokens and heads in the summary", (v) => Number(v), 5)
    .option("--json", "print JSON: input_ids, logits_last, attention_last_row [layers][heads][tokens], hidden_states")
    .action(async (o: { model: string; ids?: number[]; text?: string; hidden?: boolean; top: number; json?: boolean }) => {
      if (!o.ids === !o.text) throw new AbftError("give exactly one of --ids and --text", "BAD_ARGS");
      const src = await resolveWithProgress(o.model);
      let tok = o.text !== undefined ? tokenizerFor(src) : null;
      if (!tok) {
        try {
          tok = tokenizerFor(src); // token strings for the summary and the JSON, when the folder has a tokenizer
        } catch {
          tok = null;
        }
      }
      const ids = o.ids ?? tok!.encode(o.text!).ids;
      const V = src.config.vocabSize;
      const bad = ids.find((id) => id >= V);
      if (bad !== undefined) throw new AbftError(`--ids: token id ${bad} is outside the vocabulary (${V} tokens)`, "BAD_ARGS");
      const model = await openModel(src);
      const rt = model.headWeight().rt;
      const n = ids.length;
      const out = await noGradAsync(async () => {
        const batch = makeBatch(rt, [ids], src.config.maxPositions);
        const r = scope(() => {
          const res = model.forward(batch, { attLast: true, hiddenStates: !!o.hidden });
          const logits = lmHead(res.hidden, model.headWeight(), fromArray(rt, new Uint32Array([n - 1]), [1]));
          return { res, logits };
        });
        const logits = Array.from(await r.logits.toF32());
        const att = await Promise.all(r.res.attLast.map((t) => t.toF32()));
        const hidden = o.hidden ? await Promise.all(r.res.hiddenStates.map((t) => t.toF32())) : [];
        r.logits.free();
        disposeForward(r.res);
        return { logits, att, hidden, T: batch.T };
      });
      const NH = src.config.nHeads;
      // attLast is [1, NH, T] with T the padded length: row h starts at h * T
      const attention = out.att.map((a) => Array.from({ length: NH }, (_, h) => Array.from(a.subarray(h * out.T, h * out.T + n))));
      const C = src.config.hiddenSize;
      const hidden = out.hidden.map((hs) => Array.from({ length: n }, (_, t) => Array.from(hs.subarray(t * C, (t + 1) * C))));
      if (o.json) {
        const json: Record<string, unknown> = { input_ids: ids, logits_last: out.logits, attention_last_row: attention };
        if (tok) json.tokens = ids.map((id) => tok!.decode([id]));
        if (o.hidden) json.hidden_states = hidden;
        console.log(JSON.stringify(json));
        return;
      }
      const show = (id: number) => (tok ? JSON.stringify(tok.decode([id])) : `#${id}`);
      const top = [...out.logits.keys()].sort((a, b) => out.logits[b] - out.logits[a]).slice(0, o.top);
      console.log(`${n} tokens; next-token top ${o.top}: ${top.map((id) => `${show(id)} ${out.logits[id].toFixed(3)}`).join(", ")}`);
      console.log(`strongest heads on each position (layer.head:attention) of the last token's row:`);
      for (let t = 0; t < n; t++) {
        const heads = attention.flatMap((layer, l) => layer.map((row, h) => ({ l, h, a: row[t] })));
        heads.sort((x, y) => y.a - x.a);
        const desc = heads.slice(0, o.top).map((x) => `${x.l}.${x.h}:${x.a.toFixed(3)}`).join(" ");
        console.log(`${String(t).padStart(4)} ${show(ids[t]).padEnd(16)} ${desc}`);
      }
      model.dispose();
    });
}
