// The type table: one row per ggml weight type with its wasm kernels (conversions, products on one and on many rows, fused adapter variants, repacked layout) and scalar references.
import { LoraEdgeError } from "../errors.js";
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import * as dq from "./reference/dequant.js";
import * as qz from "./reference/quant.js";
import { quantizeQ4_K, quantizeQ6_K } from "./reference/quant-k.js";
import { f16ToF32, f32ToF16 } from "./reference/half.js";

/**
 * How a product's kernels read x: f32 as is; rounded to f16 values; or in 8-bit blocks (qx int8, dx and xs
 * f32 per 32 values) with an f32 scale per 32 values ("x8"), an f16-rounded one ("x8h", ggml's activations for
 * Q4_0, Q4_1, Q8_0) or one f32 scale per 256 values ("x8k", ggml's activations for K-quants).
 */
export type ActivationForm = "f32" | "f16" | "x8" | "x8h" | "x8k";

export interface Activation {
  readonly form: ActivationForm;
  /** 8-bit blocks (three arrays: qx, dx, xs) rather than f32 values (one array). */
  readonly eightBit: boolean;
  /** Values per scale: x's length must be a multiple of it (1 for the float forms). */
  readonly block: number;
  /** wasm export writing the form of n values: (x, n, qx, dx, xs) for 8-bit forms, (src, dst, n) for f16; none for f32. */
  readonly kernel?: string;
  /** Scalar reference of the 8-bit form (bit-exact with `kernel`). */
  readonly x8Ref?: (x: Float32Array) => qz.X8;
  /** The values a product effectively multiplies with (scalar reference). */
  readonly ref: (x: Float32Array) => Float32Array;
}

function x8Form(form: ActivationForm, block: number, kernel: string, x8Ref: (x: Float32Array) => qz.X8): Activation {
  return { form, eightBit: true, block, kernel, x8Ref, ref: (x) => qz.x8Dequantized(x8Ref(x)) };
}

/** The activation forms by name. */
export const ACTIVATIONS: Readonly<Record<ActivationForm, Activation>> = {
  f32: { form: "f32", eightBit: false, block: 1, ref: (x) => x },
  f16: { form: "f16", eightBit: false, block: 1, kernel: "round_f16", ref: (x) => x.map((v) => f16ToF32(f32ToF16(v))) },
  x8: x8Form("x8", 32, "quantize_x8", qz.quantizeX8),
  x8h: x8Form("x8h", 32, "quantize_x8_f16", qz.quantizeX8F16),
  x8k: x8Form("x8k", 256, "quantize_x8_k", qz.quantizeX8K),
};

/** The kernels of one way to multiply a type's rows with x. */
export interface ProductKernels {
  /** How the kernels read x. */
  readonly x: ActivationForm;
  /** One row of x: (w, X, y, rows, cols[, scratch]), X being x, or qx, dx, xs for an 8-bit form. */
  readonly gemv: string;
  /** Many rows of x, each weight block read once for all: (w, X, y, rows, cols, n, yStride[, scratch]); absent: gemv per row. */
  readonly gemm?: string;
  /** gemv takes a scratch of cols f32 (one per thread) as its last argument. */
  readonly gemvScratch?: boolean;
  /** gemm takes one. */
  readonly gemmScratch?: boolean;
  /** y += s X W^T: (w, x, y, rows, cols, n, yStride, s), the second half of f32 adapter terms. */
  readonly gemmAcc?: string;
  /**
   * gemv that also applies one adapter's B in its own row pass, bit for bit as gemv then the B kernel: its
   * arguments are gemv's, then for f32 B (b, t, rank, s), for int8 B (b, meta, tq, rPad, s).
   */
  readonly gemvLora?: { readonly f32: string; readonly q8: string };
  /**
   * gemm that also applies, per row of x, one adapter term's B in its own group pass, bit for bit as gemm then
   * the B kernels: its arguments are gemm's, then a table of n entries (lora-layout.ts: writeTermEntry), one a row.
   */
  readonly gemmLora?: string;
}

/** A repacked layout of a type's rows, made in place at load for faster products. */
export interface Layout {
  /** The Matrix.layout tag. */
  readonly name: string;
  /** wasm export (w, rows, cols, scratch) rearranging the rows in place; scratch holds `groupRows` plain rows. */
  readonly repack: string;
  /** Rows per group: product row ranges start at multiples of it; a matrix with fewer rows is not repacked. */
  readonly groupRows: number;
  /** Whether the layout can hold a matrix of these plain bytes. */
  readonly accepts: (bytes: Uint8Array) => boolean;
  /** Products in this layout (8-bit x only). */
  readonly int8: ProductKernels;
}

export interface TypeKernels {
  readonly traits: GgmlTypeTraits;
  /** wasm export (src, dst, blocks): to f32, bit-exact with ggml's to_float. */
  readonly dequant: string;
  /** wasm export (src, dst, blocks, scratch): from f32, bit-exact with ggml's reference quantizer. */
  readonly quantize?: string;
  /** Products on f32 x (or x rounded as the type's `x` says). */
  readonly float: ProductKernels;
  /** Products on 8-bit x, as llama.cpp runs them on the CPU. */
  readonly int8?: ProductKernels;
  readonly layout?: Layout;
  /** wasm export of dX += dY W read from this type's plain rows, for the backward pass: (w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch). */
  readonly transposed?: string;
  /** Scalar TypeScript references. */
  readonly ref: {
    dequant(bytes: Uint8Array, n: number): Float32Array;
    quantize?(x: Float32Array): Uint8Array;
  };
}

/** True when every f16 scale of the Q4_0 blocks in `bytes` is finite (the grouped kernel assumes it). */
export function q4_0ScalesFinite(bytes: Uint8Array): boolean {
  for (let o = 1; o < bytes.length; o += 18) if ((bytes[o] & 0x7c) === 0x7c) return false;
  return true;
}

/** Float-x products that dequantize each row into a scratch row first. */
const viaRow = (gemv: string): ProductKernels => ({ x: "f32", gemv, gemvScratch: true });
const int8 = (x: ActivationForm, name: string): ProductKernels => ({ x, gemv: `gemv_${name}_q8`, gemm: `gemm_${name}_q8` });

function row(id: number, e: Omit<TypeKernels, "traits">): [number, TypeKernels] {
  const traits = ggmlTypeById(id);
  if (!traits) throw new Error(`kernel table: unknown ggml type ${id}`);
  return [id, Object.freeze({ traits, ...e })];
}

const T = GgmlType;

/** The type table, by ggml type id. Adding a type means adding its row. */
export const KERNELS: ReadonlyMap<number, TypeKernels> = new Map([
  row(T.F32, {
    dequant: "copy_f32", quantize: "copy_f32", float: { x: "f32", gemv: "gemv_f32", gemm: "gemm_f32", gemmAcc: "gemm_f32_acc" }, transposed: "gemm_t_f32",
    ref: { dequant: dq.dequantF32, quantize: qz.quantizeF32 },
  }),
  row(T.F16, {
    // a product with f16 weights sees x rounded to f16, as ggml converts it
    dequant: "f16_to_f32", quantize: "f32_to_f16", float: { x: "f16", gemv: "gemv_f16", gemm: "gemm_f16" }, transposed: "gemm_t_f16",
    ref: { dequant: dq.dequantF16, quantize: qz.quantizeF16 },
  }),
  row(T.BF16, { dequant: "bf16_to_f32", quantize: "f32_to_bf16", float: viaRow("gemv_bf16_f32"), ref: { dequant: dq.dequantBF16, quantize: qz.quantizeBF16 } }),
  row(T.Q4_0, {
    dequant: "dequant_q4_0", quantize: "quantize_q4_0", float: { x: "f32", gemv: "gemv_q4_0_f32" }, int8: int8("x8h", "q4_0"), transposed: "gemm_t_q4_0",
    layout: {
      // four rows interleaved per 32-value block (assembly/gemv-x4.ts): four rows per pass
      name: "q4_0x4", repack: "repack_q4_0x4", groupRows: 4, accepts: q4_0ScalesFinite,
      int8: {
        x: "x8h", gemv: "gemv_q4_0x4_q8", gemm: "gemm_q4_0x4_q8", gemmScratch: true,
        gemvLora: { f32: "gemv_q4_0x4_q8_lora_f32", q8: "gemv_q4_0x4_q8_lora_q8" }, gemmLora: "gemm_q4_0x4_q8_lora",
      },
    },
    ref: { dequant: dq.dequantQ4_0, quantize: qz.quantizeQ4_0 },
  }),
  row(T.Q4_1, { dequant: "dequant_q4_1", quantize: "quantize_q4_1", float: viaRow("gemv_q4_1_f32"), int8: int8("x8h", "q4_1"), ref: { dequant: dq.dequantQ4_1, quantize: qz.quantizeQ4_1 } }),
  row(T.Q5_0, { dequant: "dequant_q5_0", float: viaRow("gemv_q5_0_f32"), ref: { dequant: dq.dequantQ5_0 } }),
  row(T.Q5_1, { dequant: "dequant_q5_1", float: viaRow("gemv_q5_1_f32"), ref: { dequant: dq.dequantQ5_1 } }),
  row(T.Q8_0, { dequant: "dequant_q8_0", quantize: "quantize_q8_0", float: viaRow("gemv_q8_0_f32"), int8: int8("x8h", "q8_0"), transposed: "gemm_t_q8_0", ref: { dequant: dq.dequantQ8_0, quantize: qz.quantizeQ8_0 } }),
  row(T.Q2_K, { dequant: "dequant_q2_k", float: viaRow("gemv_q2_k_f32"), ref: { dequant: dq.dequantQ2_K } }),
  row(T.Q3_K, { dequant: "dequant_q3_k", float: viaRow("gemv_q3_k_f32"), ref: { dequant: dq.dequantQ3_K } }),
  row(T.Q4_K, { dequant: "dequant_q4_k", quantize: "quantize_q4_k", float: viaRow("gemv_q4_k_f32"), int8: int8("x8k", "q4_k"), transposed: "gemm_t_q4_k", ref: { dequant: dq.dequantQ4_K, quantize: quantizeQ4_K } }),
  row(T.Q5_K, { dequant: "dequant_q5_k", float: viaRow("gemv_q5_k_f32"), ref: { dequant: dq.dequantQ5_K } }),
  row(T.IQ4_NL, { dequant: "dequant_iq4_nl", float: viaRow("gemv_iq4_nl_f32"), ref: { dequant: dq.dequantIQ4_NL } }),
  row(T.IQ4_XS, { dequant: "dequant_iq4_xs", float: viaRow("gemv_iq4_xs_f32"), ref: { dequant: dq.dequantIQ4_XS } }),
  row(T.Q6_K, { dequant: "dequant_q6_k", quantize: "quantize_q6_k", float: viaRow("gemv_q6_k_f32"), int8: int8("x8k", "q6_k"), transposed: "gemm_t_q6_k", ref: { dequant: dq.dequantQ6_K, quantize: quantizeQ6_K } }),
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

/**
 * The kernels a product of this matrix runs: its layout's, else its type's on 8-bit x when `x8` is asked
 * and the type has them and the columns fit their blocks, else its type's on float x.
 */
export function productKernels(type: TypeKernels, layout: string | undefined, x8: boolean, cols: number): ProductKernels {
  if (layout !== undefined) {
    if (type.layout?.name !== layout) throw new UnsupportedTypeError(type.traits.id, `${layout} layout`);
    if (!x8) throw new UnsupportedTypeError(type.traits.id, `f32-x product for the ${layout} layout (it takes 8-bit x only)`);
    return type.layout.int8;
  }
  if (x8 && type.int8 && cols % ACTIVATIONS[type.int8.x].block === 0) return type.int8;
  return type.float;
}
