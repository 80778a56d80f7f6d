// Writing .safetensors files (the format: src/io/safetensors.ts): checkpoints, run results, exports.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { DTYPE_BYTES, SafetensorsError, SUPPORTED_DTYPES, type Dtype } from "./safetensors.ts";

export interface TensorToWrite {
  dtype: Dtype;
  shape: number[];
  /** the values, or a function that makes them when the writer reaches this tensor (so a large
   * file is written holding one tensor in memory at a time) */
  data: Float32Array | Uint16Array | (() => Float32Array | Uint16Array);
}

/**
 * Writes a .safetensors file. Tensors are laid out as HF's writer does (larger dtypes first, then
 * by name), the header is padded with spaces to a multiple of 8 bytes, so every F32 tensor lands
 * 4-byte aligned. The file is written under a temporary name and renamed, so a crash never leaves
 * a half-written checkpoint under the final name.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new SafetensorsError(`${path}: metadata ${k} is not a string`);
  }
  const order = entries.sort(([na, a], [nb, b]) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (na < nb ? -1 : na > nb ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of order) {
    if (name === "__metadata__") throw new SafetensorsError(`${path}: a tensor may not be named __metadata__`);
    if (!(SUPPORTED_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new SafetensorsError(`${path}: tensor ${name}: cannot write dtype ${t.dtype}`, "UNSUPPORTED_DTYPE");
    }
    const n = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (typeof t.data !== "function") checkData(path, name, t, t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const file = AtomicFile.create(path);
  try {
    file.write(safetensorsHead(header));
    for (const [name, t] of order) {
      const data = typeof t.data === "function" ? checkData(path, name, t, t.data()) : t.data;
      file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } catch (e) {
    file.abort();
    throw e;
  }
  file.commit();
}

/** The length prefix and JSON header, padded with spaces so that the data starts 8-byte aligned. */
export function safetensorsHead(header: Record<string, unknown>): Uint8Array {
  const json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) hb = enc.encode(json + " ".repeat(pad));
  const head = new Uint8Array(8 + hb.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(hb.length), true);
  head.set(hb, 8);
  return head;
}

/**
 * A file written under a temporary name in its folder and renamed on commit(): a crash never
 * leaves a half-written file under the final name. abort() removes the temporary file.
 */
export class AtomicFile {
  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly fd: number,
  ) {}

  static create(path: string): AtomicFile {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    return new AtomicFile(path, tmp, openSync(tmp, "w"));
  }

  write(b: Uint8Array): void {
    let done = 0;
    while (done < b.length) done += writeSync(this.fd, b, done, Math.min(b.length - done, 1 << 30));
  }

  /** Closes (after fsync when asked: a cache that must survive a power cut) and renames into place. */
  commit(fsync = false): void {
    if (fsync) fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }

  abort(): void {
    closeSync(this.fd);
    try {
      unlinkSync(this.tmp);
    } catch {}
  }
}

/** Refuses data whose array type or length disagrees with the tensor's dtype and shape. */
function checkData(path: string, name: string, t: TensorToWrite, data: Float32Array | Uint16Array): Float32Array | Uint16Array {
  const want = t.dtype === "F32" ? Float32Array : Uint16Array;
  if (!(data instanceof want)) {
    throw new SafetensorsError(`${path}: tensor ${name}: ${t.dtype} data must be a ${want.name}`);
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== data.length) {
    throw new SafetensorsError(`${path}: tensor ${name}: shape [${t.shape.join(", ")}] has ${numel} elements but the data has ${data.length}`);
  }
  return data;
}
