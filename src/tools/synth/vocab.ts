// A generated SentencePiece-style vocabulary (llama tokenizer): control, byte and word-piece tokens.

/** Token types as llama.cpp reads tokenizer.ggml.token_type. */
export const TokenType = Object.freeze({ NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 });

export interface Vocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  bos: number;
  eos: number;
  unk: number;
}

const LETTERS = "etaoinshrdlucmfwypvbgkjqxz";
const CHARS = LETTERS + LETTERS.toUpperCase() + "0123456789.,!?'\"-:;()";

/**
 * `size` tokens: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then single characters, "▁"-prefixed
 * words and pieces, all distinct, scored so shorter pieces rank lower (as in a trained SentencePiece model).
 */
export function generateVocab(size: number): Vocab {
  if (!Number.isInteger(size) || size < 3 + 256 + 2) throw new RangeError(`vocabulary size must be at least 261, got ${size}`);
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  const seen = new Set(tokens);
  const push = (t: string) => {
    if (tokens.length >= size || seen.has(t)) return;
    seen.add(t);
    tokens.push(t);
    types.push(TokenType.NORMAL);
  };
  push("▁");
  for (const c of CHARS) push(c);
  for (const c of CHARS) push("▁" + c);
  // Pieces of growing length over the letters: enumerate base-26 strings, with and without the word marker.
  for (let len = 2; tokens.length < size; len++) {
    const total = LETTERS.length ** len;
    for (let i = 0; i < total && tokens.length < size; i++) {
      let s = "";
      let k = i;
      for (let j = 0; j < len; j++) { s = LETTERS[k % 26] + s; k = Math.floor(k / 26); }
      push("▁" + s);
      push(s);
    }
  }
  const scores = new Float32Array(size);
  for (let i = 0; i < size; i++) scores[i] = types[i] === TokenType.NORMAL ? -i : 0;
  return { tokens, scores, types: Int32Array.from(types), bos: 1, eos: 2, unk: 0 };
}
