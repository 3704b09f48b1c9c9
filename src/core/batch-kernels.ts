// The batch kernel table: for each weight type with a matrix-matrix product (several tokens at once), its wasm export.
import { GgmlType } from "../gguf/ggml-types.js";

export interface BatchKernels {
  /** wasm export (w, qx, dx, xs, y, rows, cols, n, yStride) with x in 8-bit blocks (the layout of the type's gemvX8). */
  readonly gemmX8?: string;
  /** wasm export (w, x, y, rows, cols, n, yStride) with f32 x (for F16: x already rounded to f16 values). */
  readonly gemmF32?: string;
}

const T = GgmlType;

/** Batch kernels by ggml type id; a type without an entry runs its single-token kernel once per token. */
export const BATCH_KERNELS: ReadonlyMap<number, BatchKernels> = new Map<number, BatchKernels>([
  [T.F32, { gemmF32: "gemm_f32" }],
  [T.F16, { gemmF32: "gemm_f16" }],
  [T.Q4_0, { gemmX8: "gemm_q4_0_q8" }],
  [T.Q4_1, { gemmX8: "gemm_q4_1_q8" }],
  [T.Q8_0, { gemmX8: "gemm_q8_0_q8" }],
  [T.Q4_K, { gemmX8: "gemm_q4_k_q8" }],
  [T.Q6_K, { gemmX8: "gemm_q6_k_q8" }],
]);
