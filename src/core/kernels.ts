// The kernel table: for each ggml type id, its wasm kernels (dequantize, quantize, GEMV) and scalar references.
import { LoraEdgeError } from "../errors.js";
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import * as dq from "./reference/dequant.js";
import * as qz from "./reference/quant.js";
import { quantizeQ4_K, quantizeQ6_K } from "./reference/quant-k.js";

export interface TypeKernels {
  readonly traits: GgmlTypeTraits;
  /** wasm export (src, dst, blocks): to f32. */
  readonly dequant: string;
  /** wasm export (src, dst, blocks): from f32, bit-exact with ggml's reference quantizer. */
  readonly quantize?: string;
  /** wasm export (w, x, y, rows, cols[, scratch]) with f32 x. */
  readonly gemvF32: string;
  /** True when gemvF32 takes a scratch row of cols f32 (it dequantizes each row first). */
  readonly gemvF32Scratch: boolean;
  /** wasm export (w, qx, dx, xs, y, rows, cols) with x in 8-bit blocks of 32. */
  readonly gemvX8?: string;
  /** Scalar TypeScript references. */
  readonly ref: {
    dequant(bytes: Uint8Array, n: number): Float32Array;
    quantize?(x: Float32Array): Uint8Array;
  };
}

function k(id: number, e: Omit<TypeKernels, "traits" | "gemvF32Scratch"> & { gemvF32Scratch?: boolean }): [number, TypeKernels] {
  const traits = ggmlTypeById(id);
  if (!traits) throw new Error(`kernel table: unknown ggml type ${id}`);
  return [id, Object.freeze({ traits, gemvF32Scratch: false, ...e })];
}

const T = GgmlType;

/** Kernels by ggml type id. */
export const KERNELS: ReadonlyMap<number, TypeKernels> = new Map([
  k(T.F32, { dequant: "copy_f32", quantize: "copy_f32", gemvF32: "gemv_f32", ref: { dequant: dq.dequantF32, quantize: qz.quantizeF32 } }),
  k(T.F16, { dequant: "f16_to_f32", quantize: "f32_to_f16", gemvF32: "gemv_f16", ref: { dequant: dq.dequantF16, quantize: qz.quantizeF16 } }),
  k(T.BF16, { dequant: "bf16_to_f32", quantize: "f32_to_bf16", gemvF32: "gemv_bf16_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantBF16, quantize: qz.quantizeBF16 } }),
  k(T.Q4_0, { dequant: "dequant_q4_0", quantize: "quantize_q4_0", gemvF32: "gemv_q4_0_f32", gemvX8: "gemv_q4_0_q8", ref: { dequant: dq.dequantQ4_0, quantize: qz.quantizeQ4_0 } }),
  k(T.Q4_1, { dequant: "dequant_q4_1", quantize: "quantize_q4_1", gemvF32: "gemv_q4_1_f32", gemvF32Scratch: true, gemvX8: "gemv_q4_1_q8", ref: { dequant: dq.dequantQ4_1, quantize: qz.quantizeQ4_1 } }),
  k(T.Q5_0, { dequant: "dequant_q5_0", gemvF32: "gemv_q5_0_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantQ5_0 } }),
  k(T.Q5_1, { dequant: "dequant_q5_1", gemvF32: "gemv_q5_1_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantQ5_1 } }),
  k(T.Q8_0, { dequant: "dequant_q8_0", quantize: "quantize_q8_0", gemvF32: "gemv_q8_0_f32", gemvF32Scratch: true, gemvX8: "gemv_q8_0_q8", ref: { dequant: dq.dequantQ8_0, quantize: qz.quantizeQ8_0 } }),
  k(T.Q2_K, { dequant: "dequant_q2_k", gemvF32: "gemv_q2_k_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantQ2_K } }),
  k(T.Q3_K, { dequant: "dequant_q3_k", gemvF32: "gemv_q3_k_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantQ3_K } }),
  k(T.Q4_K, { dequant: "dequant_q4_k", quantize: "quantize_q4_k", gemvF32: "gemv_q4_k_f32", gemvF32Scratch: true, gemvX8: "gemv_q4_k_q8", ref: { dequant: dq.dequantQ4_K, quantize: quantizeQ4_K } }),
  k(T.Q5_K, { dequant: "dequant_q5_k", gemvF32: "gemv_q5_k_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantQ5_K } }),
  k(T.IQ4_NL, { dequant: "dequant_iq4_nl", gemvF32: "gemv_iq4_nl_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantIQ4_NL } }),
  k(T.IQ4_XS, { dequant: "dequant_iq4_xs", gemvF32: "gemv_iq4_xs_f32", gemvF32Scratch: true, ref: { dequant: dq.dequantIQ4_XS } }),
  k(T.Q6_K, { dequant: "dequant_q6_k", quantize: "quantize_q6_k", gemvF32: "gemv_q6_k_f32", gemvF32Scratch: true, gemvX8: "gemv_q6_k_q8", ref: { dequant: dq.dequantQ6_K, quantize: quantizeQ6_K } }),
]);

export class UnsupportedTypeError extends LoraEdgeError {
  constructor(readonly typeId: number, readonly what: string) {
    super("UNSUPPORTED_TYPE", `no ${what} kernel for ggml type ${ggmlTypeById(typeId)?.name ?? typeId}`);
  }
}

/** Kernels for a type id; throws UnsupportedTypeError when the core has none. */
export function kernelsFor(typeId: number, what = "any"): TypeKernels {
  const e = KERNELS.get(typeId);
  if (!e) throw new UnsupportedTypeError(typeId, what);
  return e;
}
