// Q4_0 matrices repacked in place into groups of four rows for the four-rows-per-pass GEMV kernel.
import { GgmlType } from "../gguf/ggml-types.js";
import type { Core, Matrix } from "./core.js";

/** Layout tag of a Q4_0 matrix whose rows are interleaved in groups of four (assembly/gemv-x4.ts). */
export const Q4_0X4 = "q4_0x4";

/** The 8-bit-x kernel for the grouped layout (same arguments as gemv_q4_0_q8). */
export const GEMV_Q4_0X4 = "gemv_q4_0x4_q8";
/** The grouped kernel that also applies one adapter's B in its row pass: f32 B (gemv_f32_acc's arguments after its own), int8 B (lora_b_q8_acc's). */
export const GEMV_Q4_0X4_LORA = { f32: "gemv_q4_0x4_q8_lora_f32", q8: "gemv_q4_0x4_q8_lora_q8" } as const;
/** The batch kernel for the grouped layout (gemm_q4_0_q8's arguments, then a scratch of four plain rows). */
export const GEMM_Q4_0X4 = "gemm_q4_0x4_q8";

/** The 8-bit-x GEMV kernel of a matrix: the grouped kernel for the grouped layout, else its type's (if any). */
export function gemvX8KernelOf(m: Matrix, typeKernel: string | undefined): string | undefined {
  return m.layout === Q4_0X4 ? GEMV_Q4_0X4 : typeKernel;
}

/** True when every f16 scale of the Q4_0 blocks in `bytes` is finite (the grouped kernel assumes it). */
export function q4_0ScalesFinite(bytes: Uint8Array): boolean {
  for (let o = 1; o < bytes.length; o += 18) if ((bytes[o] & 0x7c) === 0x7c) return false;
  return true;
}

/** True when a matrix can take the grouped layout: Q4_0, plain layout, at least one group of four rows, finite scales. */
export function canRepackQ4_0x4(core: Core, m: Matrix): boolean {
  if (m.type.id !== GgmlType.Q4_0 || m.layout !== undefined || m.rows < 4 || m.cols % 32 !== 0) return false;
  return q4_0ScalesFinite(core.arena.u8(m.ptr, m.rows * m.rowBytes));
}

/**
 * Rearranges a resident Q4_0 matrix in place into groups of four rows and returns its new description (the
 * old one must not be used for products any more); a matrix that cannot take the layout comes back unchanged.
 */
export function repackQ4_0x4(core: Core, m: Matrix): Matrix {
  if (!canRepackQ4_0x4(core, m)) return m;
  core.arena.scoped((s) => core.call("repack_q4_0x4", m.ptr, m.rows, m.cols, s.alloc(4 * m.rowBytes)));
  return Object.freeze({ ...m, layout: Q4_0X4 });
}
