// Token (+ learned position) embedding gather (kernels/embedding_forward.wgsl).
// out [N, C] f32 = wte[ids] (+ wpe[pos]); tables f32, bf16 or f16 (16-bit: two per u32 word,
// element 2j in the low half, as safetensors stores them). Frozen: no backward.
import { AbftError } from "../gpu/errors.ts";
import type { GpuBuffer, Runtime } from "../gpu/runtime.ts";
import { grid1d } from "./grid.ts";
import { tableSlices } from "./table_slices.ts";

export type EmbeddingDtype = "f32" | "bf16" | "f16";

export interface EmbeddingArgs {
  /** f32 [N, C] */
  out: GpuBuffer;
  /** u32 [N] token ids, checked on the host with checkTokenIds before upload */
  ids: GpuBuffer;
  /** [V, C] in `dtype` */
  wte: GpuBuffer;
  /** optional learned positions (GPT-2): table [P, C] in `dtype` and u32 [N] positions */
  wpe?: GpuBuffer;
  pos?: GpuBuffer;
}

export interface EmbeddingDims {
  N: number;
  C: number;
  /** rows of wte */
  V: number;
  /** rows of wpe (needed with wpe) */
  P?: number;
  dtype: EmbeddingDtype;
}

export function embeddingForward(rt: Runtime, a: EmbeddingArgs, d: EmbeddingDims): void {
  const usePos = a.wpe !== undefined;
  if (usePos !== (a.pos !== undefined)) throw new Error("embeddingForward: give both wpe and pos, or neither");
  if (usePos && !(d.P && d.P > 0)) throw new Error("embeddingForward: wpe needs P (its number of rows)");
  if (d.N === 0) return;
  // a table over the binding limit is read a slice of rows per dispatch; each token is in one slice
  for (const s of tableSlices(rt, a.wte, d.V, d.C, d.dtype, "embedding table")) {
    rt.dispatch(`embedding_forward:forward_${d.dtype}`, {
      params: { N: d.N, C: d.C, V: d.V, P: usePos ? d.P! : 1, usePos: usePos ? 1 : 0, row0: s.row0, rows: s.rows },
      // without positions the unused bindings get the (read-only) ids and the table again
      bind: { out: a.out, ids: a.ids, wte: s.binding, wpe: a.wpe ?? s.binding, pos: a.pos ?? a.ids },
      workgroups: grid1d(d.N * Math.ceil(d.C / 4), 256),
    });
  }
}

/** Throws (naming the first bad position) unless every id is < V. */
export function checkTokenIds(ids: ArrayLike<number>, V: number, what = "token id"): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) {
      throw new AbftError(
        `${what} ${id} at position ${i} is outside the table's ${V} rows`,
        "TOKEN_ID_OUT_OF_RANGE",
        "the tokenizer and the model's vocabulary disagree: check that both come from the same model",
      );
    }
  }
}
