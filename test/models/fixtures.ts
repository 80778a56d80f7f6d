// Loads a fixture model of ../shared/fixtures (HF transformers, float64 references; see its README).
import { join } from "node:path";
import { buildModel } from "../../models/registry.ts";
import type { LanguageModel } from "../../models/common.ts";
import { loadConfig } from "../../src/io/config.ts";
import { Checkpoint } from "../../src/io/safetensors.ts";
import type { Runtime } from "../../src/gpu/runtime.ts";
import { SHARED } from "../helpers.ts";

export const FIXTURES = ["gpt2", "llama", "llama-bf16", "llama-sharded", "qwen2"] as const;

export interface FixtureCase {
  input_ids: number[];
  label_positions: number[];
  correct_positions: number[];
  target_token: number;
  threshold_used: number;
  abft_loss: number;
  e2e_loss: number;
  n_induction_heads: number;
}

export interface Fixture {
  model: LanguageModel;
  cases: FixtureCase[];
  qkParams: string[];
  ref: Checkpoint;
  /** a reference tensor as f32 */
  get(name: string): { data: Float32Array; shape: number[] };
}

export function loadFixture(rt: Runtime, name: string): Fixture {
  const dir = join(SHARED, "fixtures", name);
  const config = loadConfig(dir);
  const ckpt = Checkpoint.open(dir);
  const model = buildModel(rt, config, ckpt);
  ckpt.close();
  const json = JSON.parse(require("node:fs").readFileSync(join(dir, "reference.json"), "utf8"));
  const ref = Checkpoint.open(join(dir, "reference.safetensors"));
  return {
    model,
    cases: json.cases,
    qkParams: json.qk_params,
    ref,
    get: (n: string) => {
      const t = ref.get(n);
      return { data: Float32Array.from(t.data as Float32Array), shape: t.shape };
    },
  };
}
