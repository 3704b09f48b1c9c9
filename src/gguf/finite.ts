// Finds NaN and Inf in raw tensor bytes without decoding them: float values, and the f16 scales of block types.
import type { GgmlTypeTraits } from "./ggml-types.js";

export interface NonFinite {
  /** Values (float types) or blocks (block types) that are NaN or infinite. */
  count: number;
  /** Element index of the first one (a block's first element for block types). */
  first: number;
}

/**
 * NaN/Inf in `bytes` of type `traits`: undefined when every value is finite; `null` when the type's layout
 * is not known here (integer types cannot hold either, and count as finite).
 */
export function findNonFinite(traits: GgmlTypeTraits, bytes: Uint8Array): NonFinite | undefined | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  let first = -1;
  const hit = (i: number) => { if (count++ === 0) first = i; };
  switch (traits.name) {
    case "F32":
      for (let i = 0; i + 4 <= bytes.byteLength; i += 4) if ((v.getUint32(i, true) & 0x7f800000) === 0x7f800000) hit(i / 4);
      break;
    case "F64":
      for (let i = 0; i + 8 <= bytes.byteLength; i += 8) if (!Number.isFinite(v.getFloat64(i, true))) hit(i / 8);
      break;
    case "F16":
      for (let i = 0; i + 2 <= bytes.byteLength; i += 2) if ((v.getUint16(i, true) & 0x7c00) === 0x7c00) hit(i / 2);
      break;
    case "BF16":
      for (let i = 0; i + 2 <= bytes.byteLength; i += 2) if ((v.getUint16(i, true) & 0x7f80) === 0x7f80) hit(i / 2);
      break;
    case "I8": case "I16": case "I32": case "I64":
      return undefined;
    default: {
      const offsets = traits.halfScales;
      if (!offsets) return null;
      for (let b = 0, at = 0; at + traits.typeSize <= bytes.byteLength; b++, at += traits.typeSize) {
        if (offsets.some((o) => (v.getUint16(at + o, true) & 0x7c00) === 0x7c00)) hit(b * traits.blockSize);
      }
    }
  }
  return count ? { count, first } : undefined;
}

/** One sentence for a finding, e.g. "holds 3 NaN or Inf values (the first at element 17)". */
export function describeNonFinite(traits: GgmlTypeTraits, n: NonFinite): string {
  const what = traits.quantized ? `${n.count} block(s) whose scale is NaN or Inf` : `${n.count} NaN or Inf value(s)`;
  return `holds ${what} (the first at element ${n.first})`;
}
