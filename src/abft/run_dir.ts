// A run directory, written as the run goes so that an interrupted run loses no finished work:
//   config.json        every setting and the seed (written first)
//   metrics.jsonl      one line per finished step
//   eval_before.json   the vanilla model's evaluation; eval_after.json after training
//   abft.safetensors   only the trained tensors, with metadata naming the base model and revision
//   state.safetensors + state.json   the optimizer and controller after the last finished step
//                      (what --resume continues from); replaced atomically after every step
// Trained tensors are named "layers.<l>.<q|k|q_bias|k_bias>" in nn.Linear layout [out, in].
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LanguageModel, QkParam } from "../../models/common.ts";
import { AbftError } from "../gpu/errors.ts";
import { Checkpoint } from "../io/safetensors.ts";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors_writer.ts";
import type { QuantFormat } from "../ops/quant.ts";
import type { StepRecord, Trainer, TrainState } from "./train.ts";

export const TRAINED_FILE = "abft.safetensors";
export const FORMAT = "abft-qk-v1";

export function trainedName(p: QkParam): string {
  return `layers.${p.layer}.${p.kind}`;
}

/** runs/<timestamp>-<model>-<task>, unique */
export function defaultRunDir(model: string, task: string, root = "runs"): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  const clean = (s: string) => s.replace(/^.*\//, "").replace(/[^A-Za-z0-9._-]+/g, "_");
  let dir = join(root, `${stamp}-${clean(model)}-${clean(task)}`);
  for (let i = 2; existsSync(dir); i++) dir = join(root, `${stamp}-${clean(model)}-${clean(task)}-${i}`);
  return dir;
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

export class RunDir {
  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true });
  }

  file(name: string): string {
    return join(this.path, name);
  }

  writeJson(name: string, value: unknown): void {
    writeAtomic(this.file(name), JSON.stringify(value, null, 2) + "\n");
  }

  readJson<T>(name: string): T {
    const p = this.file(name);
    if (!existsSync(p)) throw new AbftError(`${p} does not exist`, "BAD_RUN_DIR", "is this an abft run directory?");
    return JSON.parse(readFileSync(p, "utf8")) as T;
  }

  has(name: string): boolean {
    return existsSync(this.file(name));
  }

  appendMetrics(rec: StepRecord): void {
    appendFileSync(this.file("metrics.jsonl"), JSON.stringify(rec) + "\n");
  }

  /** The finished steps' records (a partly written last line, from a crash, is dropped). */
  readMetrics(): StepRecord[] {
    if (!this.has("metrics.jsonl")) return [];
    const out: StepRecord[] = [];
    for (const line of readFileSync(this.file("metrics.jsonl"), "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        break;
      }
    }
    return out;
  }

  /** Writes the trained tensors with metadata (base model, revision, objective). */
  async saveTrained(params: QkParam[], meta: Record<string, string>, name = TRAINED_FILE): Promise<void> {
    const tensors: Record<string, TensorToWrite> = {};
    for (const p of params) tensors[trainedName(p)] = { dtype: "F32", shape: [...p.tensor.shape], data: await p.tensor.toF32() };
    writeSafetensors(this.file(`${name}.tmp`), tensors, { format: FORMAT, ...meta });
    renameSync(this.file(`${name}.tmp`), this.file(name));
  }

  /** After every step: parameters, Adam moments and the controller, for --resume. */
  async saveState(trainer: Trainer, records: StepRecord[]): Promise<void> {
    const rt = trainer.model.headWeight().rt;
    const tensors: Record<string, TensorToWrite> = {};
    for (const [i, p] of trainer.params.entries()) {
      const name = trainedName(p);
      const n = p.tensor.size;
      tensors[name] = { dtype: "F32", shape: [...p.tensor.shape], data: await p.tensor.toF32() };
      tensors[`${name}.adam_m`] = { dtype: "F32", shape: [...p.tensor.shape], data: await rt.readF32(trainer.adam.m[i], n) };
      tensors[`${name}.adam_v`] = { dtype: "F32", shape: [...p.tensor.shape], data: await rt.readF32(trainer.adam.v[i], n) };
    }
    writeSafetensors(this.file("state.safetensors.tmp"), tensors, { format: FORMAT });
    renameSync(this.file("state.safetensors.tmp"), this.file("state.safetensors"));
    this.writeJson("state.json", { ...trainer.state, steps_recorded: records.length });
  }

  /** The controller and step of the last saved state (null when no state was saved yet). */
  readState(): TrainState | null {
    return this.has("state.json") ? this.readJson<TrainState>("state.json") : null;
  }

  /** Restores the saved parameters and Adam moments into a trainer made with readState()'s state. */
  loadState(trainer: Trainer): void {
    const ck = Checkpoint.open(this.file("state.safetensors"));
    const rt = trainer.model.headWeight().rt;
    for (const [i, p] of trainer.params.entries()) {
      const name = trainedName(p);
      rt.write(p.tensor.buf, ck.get(name).data);
      rt.write(trainer.adam.m[i], ck.get(`${name}.adam_m`).data);
      rt.write(trainer.adam.v[i], ck.get(`${name}.adam_v`).data);
    }
    ck.close();
  }
}

/** Loads trained tensors (a run directory's abft.safetensors) into a model of the same shape. */
export function applyTrained(model: LanguageModel, file: string): Record<string, string> {
  const ck = Checkpoint.open(file);
  const meta = Object.fromEntries(Object.entries(ck.metadata).map(([k, v]) => [k, String(v)]));
  const names = ck.names();
  const rt = model.headWeight().rt;
  let params: QkParam[];
  if (names.some((n) => n.includes("_lora_"))) {
    const A = ck.get("layers.0.q_lora_A");
    const r = A.shape[0];
    const alpha = Number(meta.lora_alpha ?? 2 * r);
    params = model.attachLora({ r, alpha }, 0);
  } else {
    params = model.qkParams(names.some((n) => n.endsWith("_bias")));
  }
  for (const p of params) {
    const name = trainedName(p);
    if (!ck.has(name)) throw new AbftError(`${file} has no tensor ${name}: it was not trained from this model`, "BAD_RUN_DIR");
    const t = ck.get(name);
    if (t.shape.join(",") !== p.tensor.shape.join(",")) {
      throw new AbftError(`${file}: ${name} has shape [${t.shape}], the model's is [${p.tensor.shape}]`, "BAD_RUN_DIR");
    }
    rt.write(p.tensor.buf, t.data);
  }
  ck.close();
  return meta;
}

/** The load options a run's base model needs (its quantization and LoRA), from abft.safetensors. */
export function trainedLoadOptions(file: string): { quant?: QuantFormat | "none"; lora?: boolean } {
  const ck = Checkpoint.open(file);
  const meta = ck.metadata;
  const lora = ck.names().some((n) => n.includes("_lora_"));
  ck.close();
  const quant = typeof meta.quant === "string" && meta.quant !== "" ? (meta.quant as QuantFormat | "none") : "none";
  return { quant, lora };
}
