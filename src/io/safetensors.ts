// safetensors checkpoints: reading (single file or sharded through model.safetensors.index.json)
// by memory mapping. Writing is in safetensors_writer.ts.
//
// Format (https://github.com/huggingface/safetensors, "Format" in its README):
//   [u64 little-endian N][N bytes of JSON header][data]
//   header: { "<tensor name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
//             "__metadata__": { "<key>": "<string>" } }   (offsets relative to the start of data)
//
// Reading never copies the checkpoint into the JS heap: each file is mapped with Bun.mmap and a
// tensor is handed out as a view of the mapping. A Float32Array (Uint16Array) view needs a 4-byte
// (2-byte) aligned file offset; HF writers pad the header so that this holds, but when it does not
// the tensor's bytes are copied into a fresh aligned array (only that tensor).
// Supported element types: F32, BF16, F16. Other dtypes are parsed (so that byte ranges are checked)
// but reading such a tensor throws an error that names the tensor, its dtype and the file.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { AbftError } from "../gpu/errors.ts";

/** Every dtype the safetensors format defines, with its size in bytes. */
export const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** The element types abft reads and writes. */
export type Dtype = "F32" | "BF16" | "F16";
export const SUPPORTED_DTYPES: readonly Dtype[] = ["F32", "BF16", "F16"];

/** One tensor of a checkpoint, as its header describes it. */
export interface TensorInfo {
  name: string;
  /** As written in the header; only "F32" | "BF16" | "F16" can be read. */
  dtype: string;
  shape: number[];
  /** Number of elements (product of shape; 1 for a scalar). */
  numel: number;
  /** The file that holds it. */
  file: string;
  /** Absolute byte offset of its data in the file, and its length in bytes. */
  byteOffset: number;
  byteLength: number;
}

/** A tensor read in its stored type: Float32Array for F32, Uint16Array (raw bits) for BF16 / F16. */
export interface Tensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** A tensor to write. F32 data is a Float32Array; BF16 / F16 data is a Uint16Array of raw bits. */

/** A checkpoint that cannot be read: the message names the file and what is wrong. */
export class SafetensorsError extends AbftError {
  constructor(message: string, code = "BAD_SAFETENSORS", hint?: string) {
    super(message, code, hint);
  }
}

// ---------------------------------------------------------------------------------------------
// One file

/**
 * The largest file mapped whole: a mapping is one Uint8Array, and Bun's typed arrays stop at 4 GiB
 * (GPT-2 XL's single model.safetensors is 6.4 GB). Larger files are mapped a tensor at a time.
 */
export const MAX_WHOLE_MAPPING = 2 ** 32;

/** One .safetensors file, memory mapped. Tensors are views into the mapping. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  /** the whole file, or (files over MAX_WHOLE_MAPPING) only its header; null after close() */
  private map: Uint8Array | null = null;
  private perTensor = false;

  private constructor(readonly path: string) {}

  static open(path: string, maxWholeMapping = MAX_WHOLE_MAPPING): SafetensorsFile {
    if (!existsSync(path)) throw new SafetensorsError(`${path}: no such file`, "MISSING_FILE");
    const st = statSync(path);
    if (!st.isFile()) throw new SafetensorsError(`${path}: not a file`, "MISSING_FILE");
    const f = new SafetensorsFile(path);
    const size = st.size;
    if (size < 8) {
      throw new SafetensorsError(`${path}: truncated header: the file has ${size} bytes, fewer than the 8-byte header length`);
    }
    // Bun.mmap refuses empty files; size >= 8 here.
    f.perTensor = size > maxWholeMapping;
    let map = Bun.mmap(path, { shared: false, size: f.perTensor ? 8 : undefined });
    const dv = new DataView(map.buffer, map.byteOffset, 8);
    const headerLen64 = dv.getBigUint64(0, true);
    if (headerLen64 > BigInt(size - 8)) {
      throw new SafetensorsError(
        `${path}: truncated header: it should be ${headerLen64} bytes but the file has only ${size - 8} bytes after the length`,
      );
    }
    const headerLen = Number(headerLen64);
    if (f.perTensor) map = Bun.mmap(path, { shared: false, size: 8 + headerLen });
    f.map = map;
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(map.subarray(8, 8 + headerLen)));
    } catch (e) {
      throw new SafetensorsError(`${path}: the header is not valid JSON (${(e as Error).message})`);
    }
    if (header === null || typeof header !== "object" || Array.isArray(header)) {
      throw new SafetensorsError(`${path}: the header is not a JSON object`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (entry === null || typeof entry !== "object") throw new SafetensorsError(`${path}: __metadata__ is not an object`);
        for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
          if (typeof v !== "string") throw new SafetensorsError(`${path}: __metadata__.${k} is not a string`);
          f.metadata[k] = v;
        }
        continue;
      }
      f.tensors.set(name, parseEntry(path, name, entry, dataStart, dataLen));
    }
    return f;
  }

  /** The raw bytes of a tensor: a view into the mapping (no copy). */
  bytes(name: string): Uint8Array {
    const info = this.info(name);
    const map = this.mapping();
    if (!this.perTensor) return map.subarray(info.byteOffset, info.byteOffset + info.byteLength);
    if (info.byteLength > MAX_WHOLE_MAPPING) {
      throw new SafetensorsError(`${this.path}: tensor ${name} has ${info.byteLength} bytes, more than one mapping can hold (${MAX_WHOLE_MAPPING})`);
    }
    if (info.byteLength === 0) return new Uint8Array(0);
    // its own mapping, unmapped by Bun when the last view of it is gone
    return Bun.mmap(this.path, { shared: false, offset: info.byteOffset, size: info.byteLength });
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: no tensor named ${name}`, "MISSING_TENSOR");
    return info;
  }

  /** Drops the reference to the mapping (Bun unmaps it once no view of it is alive). */
  close(): void {
    this.map = null;
  }

  private mapping(): Uint8Array {
    if (!this.map) throw new SafetensorsError(`${this.path}: read after close()`, "CLOSED");
    return this.map;
  }
}

function parseEntry(path: string, name: string, entry: unknown, dataStart: number, dataLen: number): TensorInfo {
  const bad = (what: string) => new SafetensorsError(`${path}: tensor ${name}: ${what}`);
  if (entry === null || typeof entry !== "object") throw bad("its header entry is not an object");
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== "string") throw bad("no dtype");
  const elemBytes = DTYPE_BYTES[e.dtype];
  if (elemBytes === undefined) throw bad(`unknown dtype ${e.dtype}`);
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad("shape is not a list of sizes");
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
    throw bad("data_offsets is not [begin, end]");
  }
  const [begin, end] = offs as [number, number];
  const shape = e.shape as number[];
  const numel = shape.reduce((a, b) => a * b, 1);
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end - begin !== numel * elemBytes) {
    throw bad(
      `its byte range [${begin}, ${end}) holds ${end - begin} bytes but shape [${shape.join(", ")}] of ${e.dtype} needs ${numel * elemBytes}`,
    );
  }
  if (end > dataLen) {
    throw bad(`its bytes [${begin}, ${end}) run past the end of the data (${dataLen} bytes): the file is truncated`);
  }
  return { name, dtype: e.dtype, shape: [...shape], numel, file: path, byteOffset: dataStart + begin, byteLength: end - begin };
}

// ---------------------------------------------------------------------------------------------
// A checkpoint: one file or shards

/**
 * The tensors of a model: a single .safetensors file or the shards of a
 * model.safetensors.index.json. Open with a folder, a .safetensors file or an index file.
 */
export class Checkpoint {
  private readonly where = new Map<string, SafetensorsFile>();

  private constructor(
    /** The file or index that was opened. */
    readonly path: string,
    readonly files: SafetensorsFile[],
    /** The __metadata__ of a single file, or the "metadata" of an index. */
    readonly metadata: Record<string, unknown>,
  ) {}

  static open(path: string): Checkpoint {
    if (!existsSync(path)) throw new SafetensorsError(`${path}: no such file or folder`, "MISSING_FILE");
    if (statSync(path).isDirectory()) {
      const index = join(path, "model.safetensors.index.json");
      const single = join(path, "model.safetensors");
      if (existsSync(index)) return Checkpoint.openIndex(index);
      if (existsSync(single)) return Checkpoint.openFile(single);
      throw new SafetensorsError(
        `${path}: no model.safetensors or model.safetensors.index.json in this folder`,
        "MISSING_FILE",
        "abft reads safetensors checkpoints only",
      );
    }
    return path.endsWith(".json") ? Checkpoint.openIndex(path) : Checkpoint.openFile(path);
  }

  private static openFile(path: string): Checkpoint {
    const f = SafetensorsFile.open(path);
    const ck = new Checkpoint(path, [f], { ...f.metadata });
    for (const name of f.tensors.keys()) ck.where.set(name, f);
    return ck;
  }

  private static openIndex(path: string): Checkpoint {
    if (!existsSync(path)) throw new SafetensorsError(`${path}: no such file`, "MISSING_FILE");
    let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new SafetensorsError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    const wm = index?.weight_map;
    if (!wm || typeof wm !== "object") throw new SafetensorsError(`${path}: no weight_map`);
    const dir = dirname(path);
    const shardNames = [...new Set(Object.values(wm))];
    for (const s of shardNames) {
      if (typeof s !== "string" || s.includes("..")) throw new SafetensorsError(`${path}: bad shard name ${JSON.stringify(s)}`);
      if (!existsSync(join(dir, s))) {
        throw new SafetensorsError(`${path}: the index names shard ${s}, which is missing from ${dir}`, "MISSING_SHARD");
      }
    }
    const files = shardNames.map((s) => SafetensorsFile.open(join(dir, s)));
    const byName = new Map(shardNames.map((s, i) => [s, files[i]]));
    const ck = new Checkpoint(path, files, { ...(index.metadata ?? {}) });
    for (const [tensor, shard] of Object.entries(wm)) {
      const f = byName.get(shard)!;
      if (!f.tensors.has(tensor)) {
        throw new SafetensorsError(`${path}: the index puts tensor ${tensor} in ${shard}, but that shard has no such tensor`, "MISSING_TENSOR");
      }
      ck.where.set(tensor, f);
    }
    return ck;
  }

  /** Tensor names, sorted. */
  names(): string[] {
    return [...this.where.keys()].sort();
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  /** Raw bytes of a tensor: a view into the file mapping. */
  bytes(name: string): Uint8Array {
    return this.file(name).bytes(name);
  }

  /**
   * A tensor in its stored type: a zero-copy view when its offset is aligned, else a copy.
   * Throws for dtypes other than F32 / BF16 / F16.
   */
  get(name: string): Tensor {
    const info = this.info(name);
    const dtype = checkDtype(info);
    const b = this.bytes(name);
    return { name, dtype, shape: [...info.shape], data: dtype === "F32" ? asF32(b) : asU16(b) };
  }

  /** A tensor as float32: a view for aligned F32, else a new array (BF16 / F16 upcast exactly). */
  getF32(name: string): Float32Array {
    const t = this.get(name);
    if (t.dtype === "F32") return t.data as Float32Array;
    return t.dtype === "BF16" ? bf16ToF32(t.data as Uint16Array) : f16ToF32(t.data as Uint16Array);
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new SafetensorsError(`${this.path}: no tensor named ${name}`, "MISSING_TENSOR");
    return f;
  }
}

function checkDtype(info: TensorInfo): Dtype {
  if ((SUPPORTED_DTYPES as readonly string[]).includes(info.dtype)) return info.dtype as Dtype;
  throw new SafetensorsError(
    `${info.file}: tensor ${info.name} has dtype ${info.dtype}; abft reads ${SUPPORTED_DTYPES.join(", ")} only`,
    "UNSUPPORTED_DTYPE",
    "convert the checkpoint to float32 or bfloat16 safetensors",
  );
}

function asF32(b: Uint8Array): Float32Array {
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return new Float32Array(b.slice().buffer); // slice() copies into a fresh, aligned buffer
}

function asU16(b: Uint8Array): Uint16Array {
  if (b.byteOffset % 2 === 0) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return new Uint16Array(b.slice().buffer);
}

// ---------------------------------------------------------------------------------------------
// Conversions

/** bfloat16 bits → float32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const u = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return new Float32Array(u.buffer);
}

/** float32 → bfloat16 bits, rounding to nearest even (NaN stays NaN), as torch's .to(bfloat16). */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0) {
      out[i] = (x >>> 16) | 0x0040; // quiet NaN
    } else {
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** IEEE half bits → float32 (exact, subnormals included). */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 31) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return out;
}
