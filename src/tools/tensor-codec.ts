// Tensor bytes <-> f32 for the tools, through the core's kernel table (its scalar references: no wasm needed).
import { GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import { KERNELS } from "../core/kernels.js";

function traits(type: number | GgmlTypeTraits): GgmlTypeTraits {
  const t = typeof type === "number" ? ggmlTypeById(type) : type;
  if (!t) throw new TypeError(`unknown ggml type ${String(type)}`);
  return t;
}

/** True when the type can be both decoded and encoded. */
export function canCode(type: number | GgmlTypeTraits): boolean {
  return KERNELS.get(traits(type).id)?.ref.quantize !== undefined;
}

/** Decodes `n` values of a ggml type to f32. Throws TypeError for types the core cannot decode. */
export function decodeToF32(bytes: Uint8Array, type: number | GgmlTypeTraits, n: number): Float32Array {
  const t = traits(type);
  const k = KERNELS.get(t.id);
  if (!k) throw new TypeError(`cannot decode ggml type ${t.name}`);
  return k.ref.dequant(bytes, n);
}

/** Encodes f32 values as a ggml type with ggml's reference rounding. */
export function encodeFromF32(x: Float32Array, type: number | GgmlTypeTraits): Uint8Array {
  const t = traits(type);
  if (x.length % t.blockSize !== 0) throw new TypeError(`${x.length} values are not a multiple of ${t.name}'s block size ${t.blockSize}`);
  const quantize = KERNELS.get(t.id)?.ref.quantize;
  if (!quantize) throw new TypeError(`cannot encode ggml type ${t.name}`);
  return quantize(x);
}
