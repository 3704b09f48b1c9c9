// Test utilities for the kernel core: seeded random data, valid random quantized blocks, normwise error.
import { GgmlTypeTraits } from "../../src/gguf/ggml-types.js";
import { kernelsFor } from "../../src/core/kernels.js";
import { mulberry32 } from "../../src/random.js";

/** Deterministic PRNG: uniform in [0, 1). */
export const rng = mulberry32;

/** Roughly normal values (sum of uniforms), scaled. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * scale);
}

/** Byte offsets of the f16 scale fields inside one block, per type name. */
export const F16_FIELDS: Record<string, number[]> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0],
  Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], IQ4_NL: [0], IQ4_XS: [0],
};

/**
 * Random bytes of `blocks` blocks of a type, with every f16 scale finite and moderate; quantizable types
 * are made by the reference quantizer from random floats instead when `viaQuantizer` is set.
 */
export function randomBlocks(t: GgmlTypeTraits, blocks: number, seed: number, viaQuantizer = false): Uint8Array {
  const r = rng(seed);
  const ref = kernelsFor(t.id).ref;
  if (viaQuantizer && ref.quantize) return ref.quantize(randomF32(blocks * t.blockSize, seed));
  if (t.name === "F32") return new Uint8Array(randomF32(blocks, seed).buffer);
  const b = Uint8Array.from({ length: blocks * t.typeSize }, () => (r() * 256) | 0);
  if (t.name === "F16" || t.name === "BF16") {
    // keep values finite: clear the top exponent bit pattern that means Inf/NaN
    for (let i = 1; i < b.length; i += 2) b[i] = (b[i] & 0x80) | (t.name === "F16" ? 0x30 + ((b[i] & 0x7f) % 16) : 0x3c + ((b[i] & 0x7f) % 4));
    return b;
  }
  for (let k = 0; k < blocks; k++) {
    for (const f of F16_FIELDS[t.name] ?? []) {
      const o = k * t.typeSize + f;
      b[o + 1] = 0x20 + ((r() * 16) | 0);
    }
  }
  return b;
}

/** max|a-b| / max|b|. */
export function normwise(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

/** True when two f32 arrays hold the same bit patterns. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
