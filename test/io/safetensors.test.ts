// safetensors reading (single, sharded, bf16), zero-copy views and misaligned copies, the writer,
// dtype conversions, and one-line errors for broken checkpoints.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Checkpoint,
  SafetensorsError,
  SafetensorsFile,
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
} from "../../src/io/safetensors.ts";
import { writeSafetensors } from "../../src/io/safetensors_writer.ts";
import { SHARED, testRng } from "../helpers.ts";

const FX = join(SHARED, "fixtures");
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "abft-st-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file written by hand: `pad` extra spaces after the JSON header, then `data`. */
function rawFile(name: string, header: object, data: Uint8Array, pad = 0): string {
  const json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  const p = join(tmp, name);
  writeFileSync(p, out);
  return p;
}

function expectError(fn: () => unknown, code: string, ...parts: string[]): SafetensorsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SafetensorsError);
  const e = err as SafetensorsError;
  expect(e.code).toBe(code);
  expect(e.message).not.toContain("\n");
  for (const p of parts) expect(e.message).toContain(p);
  return e;
}

describe("reading", () => {
  test("every fixture checkpoint opens, with consistent shapes", () => {
    for (const d of ["gpt2", "llama", "llama-bf16", "llama-sharded", "qwen2"]) {
      const ck = Checkpoint.open(join(FX, d));
      expect(ck.names().length).toBeGreaterThan(20);
      for (const n of ck.names()) {
        const info = ck.info(n);
        expect(info.byteLength).toBe(info.numel * (info.dtype === "F32" ? 4 : 2));
        expect(ck.getF32(n).length).toBe(info.numel);
      }
    }
    const gpt2 = Checkpoint.open(join(FX, "gpt2"));
    expect(gpt2.info("transformer.h.0.attn.c_attn.weight").shape).toEqual([64, 192]); // Conv1D [in, 3d]
    const baby = Checkpoint.open(join(SHARED, "models/babygpt2"));
    expect(baby.info("transformer.wte.weight")).toMatchObject({ dtype: "BF16", shape: [50257, 256] });
    const wte = baby.getF32("transformer.wte.weight");
    expect(wte.every(Number.isFinite)).toBe(true);
  });

  test("sharded checkpoint: 14 shards, same tensors as the single-file llama (norm weights differ on purpose)", () => {
    const single = Checkpoint.open(join(FX, "llama"));
    const sharded = Checkpoint.open(join(FX, "llama-sharded/model.safetensors.index.json"));
    expect(sharded.files.length).toBe(14);
    expect(sharded.names()).toEqual(single.names());
    for (const n of single.names()) {
      if (n.includes("norm")) continue;
      expect(Buffer.compare(sharded.bytes(n), single.bytes(n))).toBe(0);
    }
  });

  test("bf16 checkpoint: stored bits are float32 weights rounded to nearest even", () => {
    const f32 = Checkpoint.open(join(FX, "llama"));
    const bf = Checkpoint.open(join(FX, "llama-bf16"));
    for (const n of f32.names()) {
      if (n.includes("norm")) continue;
      const t = bf.get(n);
      expect(t.dtype).toBe("BF16");
      expect(t.data).toBeInstanceOf(Uint16Array);
      expect(Array.from(t.data)).toEqual(Array.from(f32ToBf16(f32.getF32(n))));
      expect(Array.from(bf.getF32(n))).toEqual(Array.from(bf16ToF32(t.data as Uint16Array)));
    }
  });

  test("aligned tensors are views of one mapping; misaligned ones are correct copies", () => {
    const ck = Checkpoint.open(join(FX, "gpt2/model.safetensors"));
    const [a, b] = ck.names();
    expect(ck.get(a).data.buffer).toBe(ck.get(b).data.buffer); // both view the mmap, no copy
    expect(ck.getF32(a).buffer).toBe(ck.bytes(a).buffer);

    const rng = testRng("safetensors misaligned");
    const vals = Float32Array.from({ length: 7 }, () => rng.normal());
    const bits = new Uint16Array([0x3f80, 0xc000, 0x4049]);
    const data = new Uint8Array(28 + 6);
    data.set(new Uint8Array(bits.buffer), 0); // bf16 first: the f32 tensor starts at data offset 6
    data.set(new Uint8Array(vals.buffer), 6);
    const header = { b: { dtype: "BF16", shape: [3], data_offsets: [0, 6] }, f: { dtype: "F32", shape: [7], data_offsets: [6, 34] } };
    const residues = new Set<number>();
    for (let pad = 0; pad < 4; pad++) {
      const p = rawFile(`mis${pad}.safetensors`, header, data, pad);
      const m = Checkpoint.open(p);
      residues.add(m.info("f").byteOffset % 4);
      expect(Array.from(m.getF32("f"))).toEqual(Array.from(vals));
      expect(Array.from(m.getF32("b"))).toEqual([1, -2, 3.140625]);
    }
    expect(residues.size).toBe(4); // every alignment of the f32 tensor was exercised
  });
});

describe("files over 4 GiB (one mapping cannot hold them: GPT-2 XL's 6.4 GB file)", () => {
  test("mapped a tensor at a time, every fixture tensor reads the same as from the whole mapping", () => {
    for (const fx of ["gpt2", "llama-bf16"]) {
      const path = join(FX, fx, "model.safetensors");
      const whole = SafetensorsFile.open(path);
      const pieces = SafetensorsFile.open(path, 64); // pretend the limit is 64 bytes
      for (const name of whole.tensors.keys()) {
        expect(Buffer.from(pieces.bytes(name)).equals(Buffer.from(whole.bytes(name)))).toBe(true);
      }
      whole.close();
      pieces.close();
    }
  });

  test("a real 4.1 GiB file (sparse) opens, and its last tensor reads back", () => {
    const rng = testRng("safetensors-big");
    const tail = rng.normalF32(5);
    const gap = 2 ** 32 + 4096; // a zero tensor in front pushes the file past 4 GiB
    const header = { zeros: { dtype: "F32", shape: [gap / 4], data_offsets: [0, gap] }, tail: { dtype: "F32", shape: [5], data_offsets: [gap, gap + 20] } };
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (json.length % 8)) % 8);
    const path = join(tmp, "big.safetensors");
    const fd = openSync(path, "w");
    const head = Buffer.alloc(8 + json.length);
    head.writeBigUInt64LE(BigInt(json.length), 0);
    head.write(json, 8);
    writeSync(fd, head);
    ftruncateSync(fd, 8 + json.length + gap); // sparse: no disk used
    writeSync(fd, new Uint8Array(tail.buffer), 0, 20, 8 + json.length + gap);
    closeSync(fd);
    const ck = Checkpoint.open(path);
    expect(Array.from(ck.get("tail").data)).toEqual(Array.from(tail));
    expect(() => ck.get("zeros")).toThrow(/tensor zeros has 4294971392 bytes, more than one mapping can hold/);
    ck.close();
    rmSync(path);
  });
});

describe("writing", () => {
  test("round trip of F32 / BF16 / F16 tensors with __metadata__, HF layout", () => {
    const rng = testRng("safetensors write");
    const w = Float32Array.from({ length: 163 }, () => rng.normal());
    const h = f32ToBf16(Float32Array.from({ length: 7 }, () => rng.normal()));
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000]);
    const s = Float32Array.of(rng.normal());
    const p = join(tmp, "out.safetensors");
    const meta = { format: "pt", abft: "W_Q/W_K deltas", step: "12" };
    writeSafetensors(p, { "z.bf16": { dtype: "BF16", shape: [7], data: h }, "a.f32": { dtype: "F32", shape: [1, 163], data: w }, half: { dtype: "F16", shape: [5], data: f16 }, scalar: { dtype: "F32", shape: [], data: s } }, meta);

    const raw = readFileSync(p);
    const n = Number(new DataView(raw.buffer, raw.byteOffset).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    expect(header.__metadata__).toEqual(meta);
    expect(header["a.f32"].data_offsets).toEqual([0, 652]); // f32 first, then by name
    expect(header.scalar.data_offsets).toEqual([652, 656]);

    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual(meta);
    const ck = Checkpoint.open(p);
    expect(ck.names()).toEqual(["a.f32", "half", "scalar", "z.bf16"]);
    expect(Array.from(ck.getF32("a.f32"))).toEqual(Array.from(w));
    expect(ck.info("a.f32").shape).toEqual([1, 163]);
    expect(Array.from(ck.get("z.bf16").data)).toEqual(Array.from(h));
    expect(Array.from(ck.getF32("half"))).toEqual([1, -2, 65504, 2 ** -24, -0]);
    expect(ck.info("scalar")).toMatchObject({ shape: [], numel: 1 });
    expect(ck.getF32("scalar")[0]).toBe(s[0]);
  });

  test("the writer refuses mismatched shapes and data types", () => {
    const p = join(tmp, "bad.safetensors");
    expectError(() => writeSafetensors(p, { x: { dtype: "F32", shape: [2, 3], data: new Float32Array(5) } }), "BAD_SAFETENSORS", "x", "[2, 3]");
    expectError(() => writeSafetensors(p, { x: { dtype: "BF16", shape: [2], data: new Float32Array(2) } }), "BAD_SAFETENSORS", "Uint16Array");
  });
});

describe("conversions", () => {
  test("f16 and bf16 decode exactly; f32 → bf16 rounds to nearest even and keeps NaN", () => {
    expect(Array.from(f16ToF32(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x3555])))).toEqual([
      1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, 0.333251953125,
    ]);
    expect(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0])).toBe(true);
    const u = new Uint32Array([0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x7fc00001, 0xff800000, 0x3f80ffff]);
    const bf = f32ToBf16(new Float32Array(u.buffer));
    expect(Array.from(bf.slice(0, 4))).toEqual([0x3f80, 0x3f80, 0x3f82, 0x3f81]); // ties to even, above tie rounds up
    expect((bf[4] & 0x7f80) === 0x7f80 && (bf[4] & 0x7f) !== 0).toBe(true); // NaN stays NaN
    expect(bf[5]).toBe(0xff80);
    expect(bf[6]).toBe(0x3f81);
    expect(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc049])))).toEqual([1, -3.140625]);
  });
});

describe("errors name the file and what is wrong, on one line", () => {
  test("missing file or folder without weights", () => {
    expectError(() => Checkpoint.open(join(tmp, "nope.safetensors")), "MISSING_FILE", "nope.safetensors");
    const empty = join(tmp, "empty_dir");
    mkdirSync(empty, { recursive: true });
    expectError(() => Checkpoint.open(empty), "MISSING_FILE", "model.safetensors");
  });

  test("truncated or unreadable header", () => {
    const tiny = join(tmp, "tiny.safetensors");
    writeFileSync(tiny, new Uint8Array([1, 2, 3]));
    expectError(() => Checkpoint.open(tiny), "BAD_SAFETENSORS", "tiny.safetensors", "truncated header");
    const src = readFileSync(join(FX, "gpt2/model.safetensors"));
    const cut = join(tmp, "cut_header.safetensors");
    writeFileSync(cut, src.subarray(0, 200));
    expectError(() => Checkpoint.open(cut), "BAD_SAFETENSORS", "cut_header.safetensors", "truncated header");
    const notJson = rawFile("notjson.safetensors", {}, new Uint8Array(0));
    const b = readFileSync(notJson);
    b[8] = "[".charCodeAt(0);
    writeFileSync(notJson, b);
    expectError(() => Checkpoint.open(notJson), "BAD_SAFETENSORS", "notjson.safetensors", "not valid JSON");
  });

  test("truncated data: the tensor whose bytes run past the end is named", () => {
    const src = readFileSync(join(FX, "gpt2/model.safetensors"));
    const p = join(tmp, "cut_data.safetensors");
    writeFileSync(p, src.subarray(0, src.length - 1000));
    const e = expectError(() => Checkpoint.open(p), "BAD_SAFETENSORS", "cut_data.safetensors", "truncated");
    expect(e.message).toMatch(/tensor \S+:/);
  });

  test("a byte range that does not match the shape", () => {
    const p = rawFile("shape.safetensors", { w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(24));
    expectError(() => Checkpoint.open(p), "BAD_SAFETENSORS", "shape.safetensors", "tensor w", "[2, 3]", "needs 24");
  });

  test("an unsupported dtype is an error naming the tensor, its dtype and the file (when read)", () => {
    const p = rawFile("i64.safetensors", { ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] }, ok: { dtype: "F32", shape: [1], data_offsets: [16, 20] } }, new Uint8Array(20));
    const ck = Checkpoint.open(p);
    expect(ck.getF32("ok")[0]).toBe(0);
    expectError(() => ck.getF32("ids"), "UNSUPPORTED_DTYPE", "i64.safetensors", "ids", "I64");
    const q = rawFile("weird.safetensors", { x: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
    expectError(() => Checkpoint.open(q), "BAD_SAFETENSORS", "weird.safetensors", "unknown dtype Q4");
  });

  test("an index that names a missing shard, or a tensor its shard lacks", () => {
    const d = join(tmp, "sharded_missing");
    mkdirSync(d, { recursive: true });
    copyFileSync(join(FX, "llama-sharded/model.safetensors.index.json"), join(d, "model.safetensors.index.json"));
    for (let i = 1; i <= 13; i++) {
      const s = `model-${String(i).padStart(5, "0")}-of-00014.safetensors`;
      copyFileSync(join(FX, "llama-sharded", s), join(d, s));
    }
    expectError(() => Checkpoint.open(d), "MISSING_SHARD", "model.safetensors.index.json", "model-00014-of-00014.safetensors");
    copyFileSync(join(FX, "llama-sharded/model-00014-of-00014.safetensors"), join(d, "model-00014-of-00014.safetensors"));
    const index = JSON.parse(readFileSync(join(d, "model.safetensors.index.json"), "utf8"));
    index.weight_map["model.extra.weight"] = "model-00001-of-00014.safetensors";
    writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify(index));
    expectError(() => Checkpoint.open(d), "MISSING_TENSOR", "model.extra.weight", "model-00001-of-00014.safetensors");
  });

  test("asking for a tensor that is not there", () => {
    const ck = Checkpoint.open(join(FX, "qwen2"));
    expectError(() => ck.get("model.layers.9.self_attn.q_proj.weight"), "MISSING_TENSOR", "model.layers.9.self_attn.q_proj.weight");
  });
});
