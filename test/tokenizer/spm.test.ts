// SentencePiece tokenizer: llama.cpp's vocabulary test cases, and ids/text against llama.cpp on real vocabularies.
import type { LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamDetokenizer, Tokenizer, TokenAttr, vocabFromMetadata } from "../../src/backends/wasm/tokenizer/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";
import { asTokens, cpuLlama, randomStrings, readVocabCases, TRICKY_STRINGS } from "./cases.js";

const SPM_VOCAB = fixture("tokenizer/ggml-vocab-llama-spm.gguf");
const STORIES = fixture("models/stories260K.gguf");

function tokenizerFor(path: string): Tokenizer {
  const f = openGguf(path);
  try {
    return new Tokenizer(vocabFromMetadata(f, path));
  } finally {
    f.close();
  }
}

describe("llama-spm vocabulary, llama.cpp's test cases", () => {
  const tok = tokenizerFor(SPM_VOCAB);
  const cases = readVocabCases(SPM_VOCAB);

  it("reads all the cases", () => {
    expect(cases.length).toBe(46);
  });

  it.each(cases.map((c, i) => [i, JSON.stringify(c.text).slice(0, 60), c] as const))(
    "case %i %s: same ids, and the ids detokenize back to the text",
    (_i, _name, c) => {
      const ids = tok.tokenize(c.text);
      expect(ids).toEqual(c.ids);
      expect(tok.detokenize(ids)).toBe(c.text);
    },
  );

  it("reads the vocabulary's flags and special ids", () => {
    const v = tok.vocab;
    expect([v.kind, v.bosId, v.eosId, v.unkId, v.addBos, v.addEos, v.addSpacePrefix]).toEqual(["spm", 1, 2, 0, true, false, true]);
    expect(v.tokens.length).toBe(32000);
    expect(v.attrs[1] & TokenAttr.CONTROL).toBeTruthy();
    expect(v.attrs[3] & TokenAttr.BYTE).toBeTruthy();
  });
});

describe("BOS, space prefix and special tokens", () => {
  const tok = tokenizerFor(STORIES);

  it("adds BOS only with addSpecial, and the empty string gives nothing or just BOS", () => {
    expect(tok.tokenize("")).toEqual([]);
    expect(tok.tokenize("", { addSpecial: true })).toEqual([1]);
    const plain = tok.tokenize("Once upon a time");
    expect(tok.tokenize("Once upon a time", { addSpecial: true })).toEqual([1, ...plain]);
  });

  it("reads control tokens only with parseSpecial, and prefixes a space after each one", () => {
    const text = "<s>Hi</s> there";
    const asText = tok.tokenize(text);
    expect(asText).not.toContain(1);
    const parsed = tok.tokenize(text, { parseSpecial: true });
    expect(parsed[0]).toBe(1);
    expect(parsed).toContain(2);
    // after a special token the next text fragment starts with "▁" again
    expect(parsed.slice(1, parsed.indexOf(2))).toEqual(tok.tokenize("Hi"));
  });

  it("falls back to byte tokens for characters outside the vocabulary", () => {
    const ids = tok.tokenize("🦙");
    // U+1F999 is F0 9F A6 99; byte tokens <0x00>.. start at id 3
    expect(ids.slice(-4)).toEqual([0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
    expect(tok.detokenize(ids)).toBe("🦙");
  });

  it("detokenizes control tokens only when asked, and drops the prefix space once", () => {
    const ids = tok.tokenize("Hello world", { addSpecial: true });
    expect(tok.detokenize(ids)).toBe(" Hello world"); // BOS renders as nothing but still uses up the strip
    expect(tok.detokenize(ids, { removeSpecial: true })).toBe(" Hello world");
    expect(tok.detokenize(ids.slice(1))).toBe("Hello world");
    expect(tok.detokenize(ids, { unparseSpecial: true })).toBe("<s> Hello world");
    expect(() => tok.tokenToPiece(512)).toThrow(RangeError);
  });
});

describe.each([
  ["stories260K", STORIES, false],
  ["llama-spm (vocab only)", SPM_VOCAB, true],
] as const)("%s against llama.cpp", (_name, path, vocabOnly) => {
  const tok = tokenizerFor(path);
  let model: LlamaModel;

  beforeAll(async () => {
    const llama = await cpuLlama();
    model = await llama.loadModel({ modelPath: path, vocabOnly });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
  });

  it("gives the same ids for tricky strings, plain and with special-token parsing", () => {
    for (const s of [...TRICKY_STRINGS, "<s>Hi</s> there<unk>", "a<s>b"]) {
      expect(tok.tokenize(s), JSON.stringify(s)).toEqual(model.tokenize(s));
      expect(tok.tokenize(s, { parseSpecial: true }), JSON.stringify(s)).toEqual(model.tokenize(s, true));
    }
  });

  it("gives the same ids and text for 300 random strings", () => {
    for (const s of randomStrings(7, 300)) {
      const ids = tok.tokenize(s);
      expect(ids, JSON.stringify(s)).toEqual(model.tokenize(s));
      expect(tok.detokenize(ids), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids)));
    }
  });

  it("streams the same text token by token, holding back split UTF-8 sequences", () => {
    for (const s of TRICKY_STRINGS) {
      const ids = tok.tokenize(s, { addSpecial: true });
      const stream = new StreamDetokenizer(tok.vocab);
      const parts = ids.map((id) => stream.push(id));
      expect(parts.join("") + stream.end(), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids)));
      expect(parts.every((p) => !p.includes("\ufffd")), JSON.stringify(s)).toBe(true);
    }
  });

  it("gives the same text for those ids, and round-trips them", () => {
    for (const s of TRICKY_STRINGS) {
      const ids = tok.tokenize(s);
      expect(tok.detokenize(ids), JSON.stringify(s)).toBe(model.detokenize(asTokens(ids)));
      expect(tok.detokenize(ids), JSON.stringify(s)).toBe(s);
      const withBos = [1, ...ids];
      expect(tok.detokenize(withBos)).toBe(model.detokenize(asTokens(withBos)));
      expect(tok.detokenize(withBos, { unparseSpecial: true })).toBe(model.detokenize(asTokens(withBos), true));
    }
  });

  it("renders every single token as llama.cpp does", () => {
    const n = Math.min(tok.nTokens, 4096);
    for (let id = 0; id < n; id++) {
      expect(tok.detokenize([id]), `token ${id}`).toBe(model.detokenize(asTokens([id])));
      expect(tok.detokenize([id], { unparseSpecial: true }), `token ${id}`).toBe(model.detokenize(asTokens([id]), true));
    }
  });
});
