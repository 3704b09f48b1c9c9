// Resident layout of compact adapter halves (Q8_0 A, int8 B rows with scale and sum, t in 7 bits): sizes the products need.
import type { Matrix } from "./types.js";

/** Bytes before the t values in a quantized-t block (lora_quantize_t): the f32 scale, padded to 16. */
export const LORA_T_HEADER = 16;

/** The rank padded to the 16 int8 lanes the B kernel reads per step. */
export function loraRankPad(rank: number): number {
  return Math.ceil(rank / 16) * 16;
}

/** Bytes of a quantized-t block for a rank. */
export function loraTBytes(rank: number): number {
  return LORA_T_HEADER + loraRankPad(rank);
}

/** An adapter pair resident in compact form: y += s B (A x) with A a Q8_0 matrix and B packed int8 rows. */
export interface LoraQ8Pair {
  /** A (rank x cols) as Q8_0 rows. */
  readonly a: Matrix;
  /** Pointer to B's int8 rows (rows x rPad). */
  readonly b: number;
  /** Pointer to B's per-row f32 scale and i32 sum (8 bytes a row). */
  readonly meta: number;
  readonly rows: number;
  readonly rank: number;
  readonly rPad: number;
  readonly bytes: number;
}

/** wasm export (t, rank, rPad, tq): t (f32) to 7-bit integers with one scale, the operand of the int8 B rows. */
export const LORA_QUANTIZE_T = "lora_quantize_t";
/** wasm export (b, meta, tq, tqStride, y, rows, rPad, s, n, yStride): y += s B t for n rows of t over int8 B rows. */
export const LORA_B_Q8 = "lora_b_q8_acc_batch";

/** Bytes of one row's entry in a fused batch kernel's term table (ProductKernels.gemmLora). */
export const TERM_ENTRY_BYTES = 24;

/** One row's adapter term for a fused batch kernel: f32 B (b, t, rank) or int8 B (b, meta, quantized t, rPad). */
export type TermEntry =
  | { readonly kind: "f32"; readonly b: number; readonly t: number; readonly rank: number; readonly scale: number }
  | { readonly kind: "q8"; readonly b: number; readonly meta: number; readonly t: number; readonly rPad: number; readonly scale: number };

/** Writes entry i of a term table at `table` (undefined: the row has no term), as the wasm kernel reads it. */
export function writeTermEntry(view: DataView, table: number, i: number, e: TermEntry | undefined): void {
  const o = table + i * TERM_ENTRY_BYTES;
  if (!e) {
    view.setUint32(o, 0, true);
    return;
  }
  view.setUint32(o, e.kind === "f32" ? 1 : 2, true);
  view.setUint32(o + 4, e.b >>> 0, true);
  view.setUint32(o + 8, e.kind === "q8" ? e.meta >>> 0 : 0, true);
  view.setUint32(o + 12, e.t >>> 0, true);
  view.setInt32(o + 16, e.kind === "f32" ? e.rank : e.rPad, true);
  view.setFloat32(o + 20, e.scale, true);
}
