// The one table of ggml tensor types: id, name, block layout; every other module looks types up here.

/** Layout facts of one ggml tensor type. Kernels for a type are registered by the core, keyed by `id`. */
export interface GgmlTypeTraits {
  /** ggml's numeric type id as stored in GGUF tensor infos. */
  readonly id: number;
  /** ggml's name, e.g. "Q4_0". */
  readonly name: string;
  /** Values per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** True for block-quantized types. */
  readonly quantized: boolean;
  /**
   * Byte offsets, within a block, of its f16 scale fields: the only bits of a block that can hold NaN or Inf
   * (undefined where the layout is not listed here).
   */
  readonly halfScales?: readonly number[];
}

function t(id: number, name: string, blockSize: number, typeSize: number, halfScales?: readonly number[]): GgmlTypeTraits {
  return Object.freeze({ id, name, blockSize, typeSize, quantized: blockSize > 1, ...(halfScales ? { halfScales: Object.freeze(halfScales) } : {}) });
}

/** Every ggml type id a GGUF file may carry (ids 4, 5 and 31..33, 36..38 were removed from ggml). */
export const GGML_TYPES: readonly GgmlTypeTraits[] = Object.freeze([
  t(0, "F32", 1, 4),
  t(1, "F16", 1, 2),
  t(2, "Q4_0", 32, 18, [0]),
  t(3, "Q4_1", 32, 20, [0, 2]),
  t(6, "Q5_0", 32, 22, [0]),
  t(7, "Q5_1", 32, 24, [0, 2]),
  t(8, "Q8_0", 32, 34, [0]),
  t(9, "Q8_1", 32, 36, [0, 2]),
  t(10, "Q2_K", 256, 84, [80, 82]),
  t(11, "Q3_K", 256, 110, [108]),
  t(12, "Q4_K", 256, 144, [0, 2]),
  t(13, "Q5_K", 256, 176, [0, 2]),
  t(14, "Q6_K", 256, 210, [208]),
  t(15, "Q8_K", 256, 292),
  t(16, "IQ2_XXS", 256, 66),
  t(17, "IQ2_XS", 256, 74),
  t(18, "IQ3_XXS", 256, 98),
  t(19, "IQ1_S", 256, 50),
  t(20, "IQ4_NL", 32, 18, [0]),
  t(21, "IQ3_S", 256, 110),
  t(22, "IQ2_S", 256, 82),
  t(23, "IQ4_XS", 256, 136, [0]),
  t(24, "I8", 1, 1),
  t(25, "I16", 1, 2),
  t(26, "I32", 1, 4),
  t(27, "I64", 1, 8),
  t(28, "F64", 1, 8),
  t(29, "IQ1_M", 256, 56),
  t(30, "BF16", 1, 2),
  t(34, "TQ1_0", 256, 54),
  t(35, "TQ2_0", 256, 66),
  t(39, "MXFP4", 32, 17),
  t(40, "NVFP4", 64, 36),
  t(41, "Q1_0", 128, 18),
  t(42, "Q2_0", 64, 18),
]);

const byId = new Map<number, GgmlTypeTraits>(GGML_TYPES.map((x) => [x.id, x]));
const byName = new Map<string, GgmlTypeTraits>(GGML_TYPES.map((x) => [x.name, x]));

/** Named ids for the types the project computes with. */
export const GgmlType = Object.freeze({
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15, IQ4_NL: 20, IQ4_XS: 23, BF16: 30,
} as const);

/** Traits for a type id, or undefined when ggml has no such type. */
export function ggmlTypeById(id: number): GgmlTypeTraits | undefined {
  return byId.get(id);
}

/** Traits for a type name (case-insensitive), or undefined. */
export function ggmlTypeByName(name: string): GgmlTypeTraits | undefined {
  return byName.get(name.toUpperCase()) ?? byName.get(name);
}

/**
 * Bytes of a tensor of `elements` values whose innermost dimension is `ne0`, or undefined when ne0
 * is not a multiple of the block size. Uses BigInt so hostile dimensions cannot overflow.
 */
export function tensorByteSize(traits: GgmlTypeTraits, ne: readonly bigint[]): bigint | undefined {
  const ne0 = ne.length > 0 ? ne[0] : 1n;
  const bs = BigInt(traits.blockSize);
  if (ne0 % bs !== 0n) return undefined;
  let rows = 1n;
  for (let i = 1; i < ne.length; i++) rows *= ne[i];
  return (ne0 / bs) * BigInt(traits.typeSize) * rows;
}
