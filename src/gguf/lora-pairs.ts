// The one pairing of a LoRA adapter's tensors, as llama.cpp's loader does it: <base>.lora_a with <base>.lora_b, norm vectors skipped.

export const LORA_A = ".lora_a";
export const LORA_B = ".lora_b";

/** The two halves of one adapted tensor (either may be missing in a bad file). */
export interface LoraHalfPair<T> {
  a?: T;
  b?: T;
}

export interface LoraPairing<T> {
  /** Halves by base tensor name, in the order the file first names them. */
  readonly pairs: Map<string, LoraHalfPair<T>>;
  /** Tensors that are neither a half nor a norm vector (llama.cpp refuses the file). */
  readonly unexpected: T[];
}

/**
 * Groups an adapter's tensors by the base tensor they adapt. Tensors named `*_norm.weight` are skipped (llama.cpp
 * ignores norm vectors in adapters); any other name without a .lora_a or .lora_b suffix is listed as unexpected.
 */
export function pairLoraTensors<T extends { readonly name: string }>(tensors: readonly T[]): LoraPairing<T> {
  const pairs = new Map<string, LoraHalfPair<T>>();
  const unexpected: T[] = [];
  for (const t of tensors) {
    const half = t.name.endsWith(LORA_A) ? "a" : t.name.endsWith(LORA_B) ? "b" : undefined;
    if (!half) {
      if (!t.name.endsWith("_norm.weight")) unexpected.push(t);
      continue;
    }
    const base = t.name.slice(0, -LORA_A.length);
    const p = pairs.get(base) ?? {};
    p[half] = t;
    pairs.set(base, p);
  }
  return { pairs, unexpected };
}

/** A pair's rank, as llama.cpp takes it: ne[0] of lora_b. */
export function loraRank(b: { readonly ne: readonly number[] }): number {
  return b.ne[0];
}
