// GPT-2 byte-level BPE: pre-tokenizer splits and merges by hand, and ids/text against llama.cpp on a learned vocabulary.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenizer, TokenAttr, TokenType, VocabError, vocabFromMetadata, type MetadataSource } from "../../src/backends/wasm/tokenizer/index.js";
import { preTokenize } from "../../src/backends/wasm/tokenizer/pretokenize.js";
import { byteEncode, charOfByte } from "../../src/backends/wasm/tokenizer/unicode.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";
import { learnBpe, TRAINING_TEXT, writeBpeVocabGguf } from "./bpe-vocab.js";
import { asTokens, cpuLlama, randomStrings, TRICKY_STRINGS } from "./cases.js";

/** Metadata from a plain object, as a parsed GGUF file would answer it. */
function meta(o: Record<string, unknown>): MetadataSource {
  return { get: (k) => o[k] };
}

function byteTokens(): string[] {
  return Array.from({ length: 256 }, (_, b) => charOfByte(b));
}

function handVocab(pre: string, extra: string[], merges: string[]): Tokenizer {
  const tokens = [...byteTokens(), ...extra];
  return new Tokenizer(vocabFromMetadata(meta({
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.pre": pre,
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": tokens.map(() => TokenType.NORMAL),
    "tokenizer.ggml.merges": merges,
  }), "hand-made"));
}

describe("pre-tokenizers (splits derived by hand from each pattern)", () => {
  const s = "Hello world's  12345!!  \n";
  it.each([
    ["gpt2", ["Hello", " world", "'s", " ", " 12345", "!!", "  \n"]],
    ["llama3", ["Hello", " world", "'s", " ", " ", "123", "45", "!!", "  \n"]],
    ["qwen2", ["Hello", " world", "'s", " ", " ", "1", "2", "3", "4", "5", "!!", "  \n"]],
    ["starcoder", ["Hello", " world", "'s", "  ", "1", "2", "3", "4", "5", "!!", "  \n"]],
    ["default", ["Hello", " world", "'", "s", " ", " ", "123", "45", "!!", "  \n"]],
  ] as const)("%s", (family, words) => {
    expect(preTokenize(family, s)).toEqual(words);
  });

  it("llama3 contractions ignore case, newlines stick to punctuation, letters take one leading non-letter", () => {
    expect(preTokenize("llama3", "I'VE ,\n\n$x")).toEqual(["I", "'VE", " ,\n\n", "$x"]);
    expect(preTokenize("gpt2", "I'VE")).toEqual(["I", "'", "VE"]);
  });

  it("uses the reference whitespace set (U+0085 is whitespace, U+FEFF is not)", () => {
    expect(preTokenize("gpt2", "a \u0085\u0085b")).toEqual(["a", " \u0085", "\u0085", "b"]);
    expect(preTokenize("gpt2", "a \ufeff\ufeffb")).toEqual(["a", " \ufeff\ufeff", "b"]);
  });

  it("byte-encodes words the GPT-2 way", () => {
    expect(byteEncode(" é\n")).toBe("\u0120\u00c3\u00a9\u010a");
  });
});

describe("merges (ids computed by hand)", () => {
  // ids: bytes 0..255, then ab 256, bc 257, abc 258, Ġa 259, abd 260
  const extra = ["ab", "bc", "abc", "\u0120a", "abd"];
  const merges = ["a b", "b c", "ab c", "\u0120 a"];

  it("applies the lowest-ranked pair first, leftmost on ties", () => {
    const tok = handVocab("gpt-2", extra, merges);
    expect(tok.tokenize("abc")).toEqual([258]);
    expect(tok.tokenize("bca")).toEqual([257, 97]);
    // Ġ a b c: "a b" (rank 0) beats "Ġ a" (rank 3); then "ab c" -> Ġ + abc
    expect(tok.tokenize(" abc")).toEqual([32, 258]); // Ġ is the byte-level character of byte 0x20
    expect(tok.tokenize(" a")).toEqual([259]);
    expect(tok.tokenize("abd")).toEqual([256, 100]);
    expect(tok.detokenize(tok.tokenize(" abc abd"))).toBe(" abc abd");
  });

  it("takes a whole word that is a token when the pre-tokenizer ignores merges (llama3)", () => {
    expect(handVocab("llama-bpe", extra, merges).tokenize("abd")).toEqual([260]);
  });

  it("drops bytes that have no token", () => {
    const tokens = ["a", "b"];
    const tok = new Tokenizer(vocabFromMetadata(meta({
      "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.merges": [],
    })));
    expect(tok.tokenize("a-b")).toEqual([0, 1]);
  });

  it("rejects an unknown pre-tokenizer and a missing merge list, naming the field", () => {
    const base = { "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["a"], "tokenizer.ggml.merges": [] };
    expect(() => vocabFromMetadata(meta({ ...base, "tokenizer.ggml.pre": "no-such" }), "x.gguf"))
      .toThrow(/x\.gguf: tokenizer\.ggml\.pre: unsupported pre-tokenizer 'no-such'/);
    const noMerges = { ...base, "tokenizer.ggml.merges": undefined };
    expect(() => vocabFromMetadata(meta(noMerges))).toThrow(VocabError);
    expect(() => vocabFromMetadata(meta({ ...base, "tokenizer.ggml.model": "bert" }))).toThrow(/tokenizer\.ggml\.model/);
  });
});

const BPE_STRINGS: readonly string[] = [
  ...TRICKY_STRINGS,
  ...TRAINING_TEXT.split("\n").slice(0, 8),
  "Hello world's  12345!!  \n",
  "I'VE  we'Re 'll 'D don't",
  "x = a+b*c <= d^e | f~g `code` $5.00 #tag @user 100%",
  "Hello , world ! it 's ' quoted ' ok . done ?",
  "a<tool>b <|endoftext|> c<tool>",
  "<|im_end|>x<|channel|>y <|fim_prefix|> <|unused_3|>z",
  "\u0085next line\u0085 \u2028sep",
  "a \u0085\u0085b \ufeff\ufeffc \u00a0\u00a0d \u2028\u2028e \u0085\u0085 \ufeff\ufeff",
  "١٢٣٤ ⅓ ² 12345678901",
  "ﬁ ligature and Ⅻ numeral",
];

describe.each(["default", "gpt-2", "llama-bpe", "qwen2", "smollm", "falcon"])("learned vocabulary, pre-tokenizer %s, against llama.cpp", (pre) => {
  const dir = mkdtempSync(join(tmpdir(), "lora-edge-bpe-"));
  const spec = learnBpe(TRAINING_TEXT, 200);
  const path = writeBpeVocabGguf(dir, fixture("tokenizer/ggml-vocab-llama-spm.gguf"), spec, pre);
  const f = openGguf(path);
  const tok = new Tokenizer(vocabFromMetadata(f, path));
  f.close();
  let model: LlamaModel;

  beforeAll(async () => {
    model = await (await cpuLlama()).loadModel({ modelPath: path, vocabOnly: true });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("learned a vocabulary with multi-byte merges", () => {
    expect(spec.merges.length).toBeGreaterThan(200);
    expect(tok.vocab.mergeRanks.size).toBe(spec.merges.length);
    expect(spec.merges.some((m) => m.length > 4)).toBe(true);
    expect(tok.tokenize(" the")).toHaveLength(1);
  });

  it("gives the same ids, plain and with special-token parsing", () => {
    for (const s of BPE_STRINGS) {
      expect(tok.tokenize(s), JSON.stringify(s)).toEqual(model.tokenize(s));
      expect(tok.tokenize(s, { parseSpecial: true }), JSON.stringify(s)).toEqual(model.tokenize(s, true));
    }
  });

  it("gives the same ids and text for 300 random strings", () => {
    for (const s of randomStrings(11, 300)) {
      const ids = tok.tokenize(s);
      expect(ids, JSON.stringify(s)).toEqual(model.tokenize(s));
      expect(tok.detokenize(ids), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids)));
    }
  });

  it("gives the same text back, with and without special tokens", () => {
    for (const s of BPE_STRINGS) {
      const ids = tok.tokenize(s, { parseSpecial: true });
      expect(tok.detokenize(ids), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids)));
      expect(tok.detokenize(ids, { unparseSpecial: true }), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids), true));
    }
    for (let id = 0; id < tok.nTokens; id++) {
      expect(tok.detokenize([id]), `token ${id}`).toBe(model.detokenize(asTokens([id])));
      expect(tok.detokenize([id], { unparseSpecial: true }), `token ${id}`).toBe(model.detokenize(asTokens([id]), true));
    }
  });

  it("finds end-of-generation and role tokens by their text", () => {
    const v = tok.vocab;
    const id = (t: string) => v.tokenToId.get(t)!;
    expect([...v.eogIds].sort((a, b) => a - b)).toEqual([id("<|endoftext|>"), id("<|im_end|>")].sort((a, b) => a - b));
    expect(v.eotId).toBe(Math.min(id("<|endoftext|>"), id("<|im_end|>")));
    expect(v.attrs[id("<|im_end|>")] & TokenAttr.CONTROL).toBeTruthy();
    expect(v.attrs[id("<|channel|>")]).toBe(TokenAttr.USER_DEFINED);
    expect(v.attrs[id("<|unused_3|>")] & TokenAttr.UNUSED).toBeTruthy();
    expect(model.tokens.eos).toBe(v.eosId);
  });
});

describe("codepoint classes against llama.cpp", () => {
  // merges "a"+lead byte, "1"+lead byte and "Ġ"+lead byte: the ids then show whether a character joined the
  // letter, number or space-prefixed word before it, i.e. how the pre-tokenizer classified it
  const tokens = byteTokens();
  const types = tokens.map(() => TokenType.NORMAL as number);
  const merges: string[] = [];
  for (const p of ["a", "1", "\u0120"]) {
    for (let b = 0xc2; b <= 0xf4; b++) {
      merges.push(p + " " + charOfByte(b));
      tokens.push(p + charOfByte(b));
      types.push(TokenType.NORMAL);
    }
  }
  tokens.push("<|endoftext|>");
  types.push(TokenType.CONTROL);
  const dir = mkdtempSync(join(tmpdir(), "lora-edge-bpe-cp-"));
  const path = writeBpeVocabGguf(dir, fixture("tokenizer/ggml-vocab-llama-spm.gguf"), { tokens, types, merges, eosId: tokens.length - 1 }, "gpt-2");
  const f = openGguf(path);
  const tok = new Tokenizer(vocabFromMetadata(f, path));
  f.close();
  let model: LlamaModel;
  beforeAll(async () => {
    model = await (await cpuLlama()).loadModel({ modelPath: path, vocabOnly: true });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("agrees on a sample of codepoints, including ones assigned after Unicode 15.1", () => {
    const cps: number[] = [0x85, 0xa0, 0x1680, 0x2028, 0x202f, 0x205f, 0x3000, 0xfeff, 0x1c89, 0xa7cb, 0x105c0, 0x2ebf0, 0x31350];
    for (let c = 0x80; c < 0x34000; c += 61) if (c < 0xd800 || c >= 0xe000) cps.push(c);
    for (const c of cps) {
      const ch = String.fromCodePoint(c);
      for (const s of ["a" + ch + "a", "1" + ch + "1", " " + ch + " x"]) {
        expect(tok.tokenize(s), `U+${c.toString(16)} in ${JSON.stringify(s)}`).toEqual(model.tokenize(s));
      }
    }
  });
});
