// Activated LoRA (aLoRA) metadata: the invocation-token key, its writer entry, and the rule its ids must follow.
import { GgufFile, GgufValueType } from "./reader.js";
import type { GgufKVInput } from "./writer.js";

/**
 * The GGUF key of an aLoRA adapter's invocation sequence: an array of u32 token ids (llama.cpp refuses any
 * other type). An adapter with it acts only from the last occurrence of that sequence in the text on.
 */
export const ALORA_INVOCATION_KEY = "adapter.alora.invocation_tokens";

/** The largest id a u32 array can hold. */
const MAX_U32 = 0xffffffff;

/** The writer entry for an invocation sequence, typed as llama.cpp reads it (array of u32). */
export function aloraInvocationKv(tokens: readonly number[]): GgufKVInput {
  return { key: ALORA_INVOCATION_KEY, type: GgufValueType.ARRAY, itemType: GgufValueType.UINT32, value: [...tokens] };
}

/**
 * The number of tokens of a base model's vocabulary, as llama.cpp counts them (the length of
 * tokenizer.ggml.tokens; without a tokenizer, token_embd's rows), or undefined when the file has neither.
 */
export function vocabularySize(base: GgufFile): number | undefined {
  const tokens = base.get("tokenizer.ggml.tokens");
  if (Array.isArray(tokens)) return tokens.length;
  const embd = base.tensor("token_embd.weight");
  return embd && embd.ne.length === 2 ? embd.ne[1] : undefined;
}

/**
 * Why `tokens` cannot be an invocation sequence, or undefined when it can: a non-empty array of integer ids
 * from 0 to 2^32 - 1, each below `nVocab` when the vocabulary size is known. An empty sequence is refused:
 * llama.cpp would then treat the adapter as a plain LoRA, which is never what the file's author meant.
 */
export function invocationTokensProblem(tokens: unknown, nVocab?: number): string | undefined {
  if (!Array.isArray(tokens)) return `must be an array of token ids, got ${JSON.stringify(tokens)}`;
  if (tokens.length === 0) return "is empty: an aLoRA adapter needs at least one invocation token (without the key it is a plain LoRA)";
  for (let i = 0; i < tokens.length; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > MAX_U32) {
      return `item ${i} is ${JSON.stringify(t)}, not a token id (an integer from 0 to ${MAX_U32})`;
    }
    if (nVocab !== undefined && t >= nVocab) {
      return `token id ${t} (item ${i}) is outside the base's vocabulary of ${nVocab} tokens (ids 0 to ${nVocab - 1})`;
    }
  }
  return undefined;
}
