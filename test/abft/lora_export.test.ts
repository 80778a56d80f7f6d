// LoRA runs leave the base model intact: `export` merges W + (alpha/r)·B·A into a full-precision HF
// folder whose model equals the adapted one, and the PEFT folder's adapters give the same update
// (for GPT-2 through one rank-2r adapter on the fused c_attn).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBatch, type QkParam } from "../../models/common.ts";
import { buildModel } from "../../models/registry.ts";
import { exportMerged } from "../../src/abft/export.ts";
import { savePeftAdapter } from "../../src/abft/peft.ts";
import { RunDir } from "../../src/abft/run_dir.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import { noGrad } from "../../src/tensor/autodiff.ts";
import { lmHead } from "../../src/tensor/ops.ts";
import { fromArray, scope } from "../../src/tensor/tensor.ts";
import { gpuRuntime, SHARED, testRng } from "../helpers.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "abft-lora-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(["llama", "gpt2"])("LoRA on the %s fixture", (name) => {
  test("export merges the adapters; the PEFT adapter holds the same update", async () => {
    const rt = await gpuRuntime();
    const rng = testRng(`lora-export-${name}`);
    const base = join(SHARED, "fixtures", name);
    const config = loadConfig(base);
    const ck = Checkpoint.open(base);
    const model = buildModel(rt, config, ck, { lora: true });
    ck.close();
    const r = 2, alpha = 6;
    const params = model.attachLora({ r, alpha }, 5);
    for (const p of params) if (p.kind.endsWith("_B")) rt.write(p.tensor.buf, rng.normalF32(p.tensor.size, 0.05)); // B starts at 0
    const run = new RunDir(join(dir, `${name}-run`));
    await run.saveTrained(params, { base_model: base, lora_r: String(r), lora_alpha: String(alpha), quant: "none" });
    const out = join(dir, `${name}-hf`);
    exportMerged(base, config, run.file("abft.safetensors"), out, {});

    // the exported model and the adapted model compute the same logits
    const ids = JSON.parse(readFileSync(join(base, "reference.json"), "utf8")).cases[0].input_ids as number[];
    const logitsOf = async (m: typeof model) => {
      const batch = makeBatch(rt, [ids]);
      const t = noGrad(() => scope(() => {
        const res = m.forward(batch);
        const l = lmHead(res.hidden, m.headWeight(), fromArray(rt, new Uint32Array([ids.length - 1]), [1]));
        res.hidden.free();
        return l;
      }));
      const v = await t.toF32();
      t.free();
      return v;
    };
    const adapted = await logitsOf(model);
    const ck2 = Checkpoint.open(out);
    const exported = buildModel(rt, loadConfig(out), ck2);
    ck2.close();
    const merged = await logitsOf(exported);
    const scale = Math.max(...Array.from(adapted, Math.abs));
    for (let i = 0; i < adapted.length; i++) expect(Math.abs(merged[i] - adapted[i])).toBeLessThan(1e-4 * scale);
    // and the update is not nothing
    const plain = buildModel(rt, config, Checkpoint.open(base));
    const before = await logitsOf(plain);
    expect(Math.max(...Array.from(before, (x, i) => Math.abs(x - adapted[i])))).toBeGreaterThan(1e-4 * scale);

    // PEFT: ΔW of every adapted module equals the trained (alpha/r)·B·A
    const peft = await savePeftAdapter(join(dir, `${name}-peft`), model, params, base);
    const cfg = JSON.parse(readFileSync(join(peft, "adapter_config.json"), "utf8"));
    const ad = Checkpoint.open(join(peft, "adapter_model.safetensors"));
    const delta = (A: Float32Array, B: Float32Array, rank: number, s: number) => {
      const K = A.length / rank, N = B.length / rank;
      const d = new Float64Array(N * K);
      for (let n = 0; n < N; n++) for (let j = 0; j < rank; j++) for (let k = 0; k < K; k++) d[n * K + k] += s * B[n * rank + j] * A[j * K + k];
      return d;
    };
    const host = async (p: QkParam) => p.tensor.toF32();
    const find = (l: number, kind: string) => params.find((p) => p.layer === l && p.kind === kind)!;
    for (let l = 0; l < config.nLayers; l++) {
      const dq = delta(await host(find(l, "q_lora_A")), await host(find(l, "q_lora_B")), r, alpha / r);
      const dk = delta(await host(find(l, "k_lora_A")), await host(find(l, "k_lora_B")), r, alpha / r);
      if (name === "gpt2") {
        expect(cfg.target_modules).toEqual(["c_attn"]);
        const pre = `base_model.model.transformer.h.${l}.attn.c_attn`;
        const d = delta(ad.getF32(`${pre}.lora_A.weight`), ad.getF32(`${pre}.lora_B.weight`), cfg.r, cfg.lora_alpha / cfg.r); // [3C, C]
        const C = config.hiddenSize;
        for (let i = 0; i < C * C; i++) {
          expect(Math.abs(d[i] - dq[i])).toBeLessThan(1e-6);
          expect(Math.abs(d[C * C + i] - dk[i])).toBeLessThan(1e-6);
          expect(d[2 * C * C + i]).toBe(0);
        }
      } else {
        expect(cfg.target_modules).toEqual(["q_proj", "k_proj"]);
        const pre = `base_model.model.model.layers.${l}.self_attn`;
        const d = delta(ad.getF32(`${pre}.q_proj.lora_A.weight`), ad.getF32(`${pre}.q_proj.lora_B.weight`), cfg.r, cfg.lora_alpha / cfg.r);
        d.forEach((x, i) => expect(Math.abs(x - dq[i])).toBeLessThan(1e-6));
      }
    }
    ad.close();
    for (const m of [model, exported, plain]) m.dispose();
  });
});
