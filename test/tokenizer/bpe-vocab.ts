// Test helper: a small GPT-2 byte-level BPE vocabulary learned from a fixed text, written as a vocab-only GGUF.
import { join } from "node:path";
import { charOfByte } from "../../src/backends/wasm/tokenizer/unicode.js";
import { preTokenize } from "../../src/backends/wasm/tokenizer/pretokenize.js";
import { byteEncode } from "../../src/backends/wasm/tokenizer/unicode.js";
import { TokenType } from "../../src/backends/wasm/tokenizer/vocab.js";
import { openGguf } from "../../src/gguf/reader.js";
import { GgufValueType } from "../../src/gguf/reader.js";
import { kvInputsFrom, writeGguf, type GgufKVInput } from "../../src/gguf/writer.js";

export const TRAINING_TEXT = [
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
  "The quick brown fox jumps over the lazy dog. It's 12345 miles away; they'll say it's 2024.",
  "def main():\n    return 0\n\n# comment\nif x == 1:\n    print('hello world')\n",
  "café naïve résumé Über straße 日本語 テキスト 中文 Привет мир Γειά σου",
  "emoji 🦙🚀 are bytes too. I've, we're, you'd, he'll, I'm, she's",
  "   indented\n\n\n\ttabbed\r\nwindows line 3.14159 1,000,000",
].join("\n").repeat(3);

export interface BpeVocabSpec {
  tokens: string[];
  types: number[];
  merges: string[];
  eosId: number;
}

/**
 * Learns `nMerges` merges over GPT-2 pre-tokenized, byte-encoded words (ties: smallest pair first), then adds
 * merges that build a few whitespace words, and two special tokens.
 */
export function learnBpe(text: string, nMerges: number): BpeVocabSpec {
  const tokens: string[] = [];
  const types: number[] = [];
  for (let b = 0; b < 256; b++) {
    tokens.push(charOfByte(b));
    types.push(TokenType.NORMAL);
  }
  const counts = new Map<string, number>();
  for (const w of preTokenize("gpt2", text)) {
    const e = byteEncode(w);
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  let words = [...counts].map(([w, n]) => ({ syms: Array.from(w), n }));
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const k = w.syms[i] + " " + w.syms[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + w.n);
      }
    }
    let best = "";
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    if (bestN === 0) break;
    const [a, b] = best.split(" ");
    merges.push(best);
    tokens.push(a + b);
    types.push(TokenType.NORMAL);
    words = words.map((w) => {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.syms[i]);
      }
      return { syms: out, n: w.n };
    });
  }
  // words whose splitting depends on the exact whitespace set get merges of their own
  for (const w of [" \u0085\u0085", "\u0085\u0085", " \ufeff\ufeff", " \u00a0\u00a0", "\u00a0\u00a0", " \u2028\u2028"]) {
    const chars = Array.from(byteEncode(w));
    let acc = chars[0];
    for (const c of chars.slice(1)) {
      if (!tokens.includes(acc + c)) {
        merges.push(acc + " " + c);
        tokens.push(acc + c);
        types.push(TokenType.NORMAL);
      }
      acc += c;
    }
  }
  // typed as the converter wrote them; some get their type overridden by their text
  const specials: [string, number][] = [
    ["<|endoftext|>", TokenType.CONTROL], ["<tool>", TokenType.USER_DEFINED], ["<|im_end|>", TokenType.NORMAL],
    ["<|fim_prefix|>", TokenType.NORMAL], ["<|channel|>", TokenType.CONTROL], ["<|unused_3|>", TokenType.CONTROL],
  ];
  for (const [t, ty] of specials) {
    tokens.push(t);
    types.push(ty);
  }
  return { tokens, types, merges, eosId: tokens.indexOf("<|endoftext|>") };
}

/**
 * Writes a vocab-only GGUF with the given pre-tokenizer, borrowing the model header keys (architecture,
 * sizes) of another vocab-only file so llama.cpp accepts it.
 */
export function writeBpeVocabGguf(dir: string, headerFrom: string, spec: BpeVocabSpec, pre: string, addBos = false): string {
  const src = openGguf(headerFrom);
  let kv: GgufKVInput[];
  try {
    kv = kvInputsFrom(src).filter((e) => !e.key.startsWith("tokenizer.") && e.key !== "llama.vocab_size");
  } finally {
    src.close();
  }
  const arr = (key: string, itemType: GgufValueType, value: readonly unknown[]): GgufKVInput =>
    ({ key, type: GgufValueType.ARRAY, itemType, value });
  kv.push(
    { key: "llama.vocab_size", type: GgufValueType.UINT32, value: spec.tokens.length },
    { key: "tokenizer.ggml.model", type: GgufValueType.STRING, value: "gpt2" },
    { key: "tokenizer.ggml.pre", type: GgufValueType.STRING, value: pre },
    arr("tokenizer.ggml.tokens", GgufValueType.STRING, spec.tokens),
    arr("tokenizer.ggml.token_type", GgufValueType.INT32, spec.types),
    arr("tokenizer.ggml.merges", GgufValueType.STRING, spec.merges),
    { key: "tokenizer.ggml.bos_token_id", type: GgufValueType.UINT32, value: spec.eosId },
    { key: "tokenizer.ggml.eos_token_id", type: GgufValueType.UINT32, value: spec.eosId },
    { key: "tokenizer.ggml.add_bos_token", type: GgufValueType.BOOL, value: addBos },
  );
  const path = join(dir, `bpe-${pre}.gguf`);
  writeGguf(path, { kv, tensors: [] });
  return path;
}
