// adapter.alora.invocation_tokens: read, written, and checked against the base's vocabulary; the seeded test adapter.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixture, scratchDir } from "../fixtures.js";
import { GgufValueType, openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { adapterMeta } from "../../src/gguf/metadata.js";
import { adapterCheckError, adapterSummary, checkAdapter } from "../../src/gguf/adapter.js";
import { ALORA_INVOCATION_KEY, aloraInvocationKv, invocationTokensProblem, vocabularySize } from "../../src/gguf/alora.js";
import { GgufError } from "../../src/gguf/errors.js";
import { AdapterMismatchError } from "../../src/errors.js";
import { ALORA_TEST_ADAPTER, writeAloraTestAdapter } from "../../src/tools/demo-adapters.js";

const ALORA = fixture(`adapters/${ALORA_TEST_ADAPTER.file}`);
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const BASE = fixture("models/stories260K.gguf");
const dir = scratchDir();

/** The aLoRA adapter rewritten with its invocation entry replaced (or removed, with `undefined`). */
function withInvocation(name: string, entry: ReturnType<typeof aloraInvocationKv> | undefined): string {
  using g = openGguf(ALORA);
  const out = join(dir, name);
  const kv = kvInputsFrom(g).filter((e) => e.key !== ALORA_INVOCATION_KEY);
  writeGguf(out, { kv: entry ? [...kv, entry] : kv, tensors: tensorInputsFrom(g) });
  return out;
}

const check = (adapter: string, base = BASE) => {
  using b = openGguf(base);
  using a = openGguf(adapter);
  return checkAdapter(b, a);
};

describe("the aLoRA test adapter", () => {
  it("is exactly what the generator writes", () => {
    const out = writeAloraTestAdapter(scratchDir(), BASE);
    expect(readFileSync(out).equals(readFileSync(ALORA))).toBe(true);
  });

  it("holds its invocation as a u32 array, read back by adapterMeta and the summary; a plain adapter has none", () => {
    using g = openGguf(ALORA);
    const e = g.kv.get(ALORA_INVOCATION_KEY)!;
    expect(e.type).toBe(GgufValueType.ARRAY);
    expect((e.value as { itemType: GgufValueType }).itemType).toBe(GgufValueType.UINT32);
    expect(adapterMeta(g).aloraInvocationTokens).toEqual([385, 328, 432]);
    expect(adapterSummary(g).aloraInvocationTokens).toEqual([385, 328, 432]);
    using plain = openGguf(S1);
    expect(adapterMeta(plain).aloraInvocationTokens).toBeUndefined();
    expect(adapterSummary(plain).aloraInvocationTokens).toBeNull();
  });

  it("fits all three stories260K bases", () => {
    for (const base of ["stories260K", "stories260K-Q4_0", "stories260K-Q8_0"]) {
      const r = check(ALORA, fixture(`models/${base}.gguf`));
      expect(r.problems).toEqual([]);
      expect(r.summary).toMatchObject({ ranks: [4], pairs: 35, aloraInvocationTokens: [385, 328, 432] });
    }
  });
});

describe("adapter.alora.invocation_tokens", () => {
  it("round-trips through the writer: any ids, in order", () => {
    const out = withInvocation("roundtrip.gguf", aloraInvocationKv([0, 511, 7, 7]));
    using g = openGguf(out);
    expect(adapterMeta(g).aloraInvocationTokens).toEqual([0, 511, 7, 7]);
    expect(check(out).ok).toBe(true);
  });

  it("check refuses ids outside the base's vocabulary, naming the key; the runtime's error is typed", () => {
    const out = withInvocation("outside.gguf", aloraInvocationKv([385, 512]));
    const r = check(out);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ tensor: ALORA_INVOCATION_KEY, expected: "token ids below 512", actual: "[385, 512]" })]);
    expect(r.problems[0].message).toMatch(/token id 512 \(item 1\) is outside the base's vocabulary of 512 tokens/);
    const e = adapterCheckError(r, out, BASE);
    expect(e).toBeInstanceOf(AdapterMismatchError);
    expect((e as AdapterMismatchError).tensor).toBe(ALORA_INVOCATION_KEY);
    expect(e!.message).toContain(ALORA_INVOCATION_KEY);
    // The same ids fit a base with a larger vocabulary (llama-2-tiny-random has 32,000 tokens): only its shapes differ.
    const other = check(out, fixture("models/llama-2-tiny-random.gguf"));
    expect(other.problems.map((p) => p.tensor)).not.toContain(ALORA_INVOCATION_KEY);
  });

  it("check refuses an empty sequence (llama.cpp would take the adapter for a plain LoRA)", () => {
    const out = withInvocation("empty.gguf", aloraInvocationKv([]));
    const r = check(out);
    expect(r.problems).toEqual([expect.objectContaining({ tensor: ALORA_INVOCATION_KEY, actual: "[]" })]);
    expect(r.problems[0].message).toMatch(/is empty/);
  });

  it("any other value type is a GgufError naming the key and its offset, as llama.cpp refuses it", () => {
    for (const [name, entry, got] of [
      ["i32.gguf", { key: ALORA_INVOCATION_KEY, type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: [385, 328, 432] }, "an array of int32"],
      ["u64.gguf", { key: ALORA_INVOCATION_KEY, type: GgufValueType.ARRAY, itemType: GgufValueType.UINT64, value: [385n, 328n] }, "an array of uint64"],
      ["scalar.gguf", { key: ALORA_INVOCATION_KEY, type: GgufValueType.UINT32, value: 385 }, "uint32"],
    ] as const) {
      const out = withInvocation(name, entry as ReturnType<typeof aloraInvocationKv>);
      using g = openGguf(out);
      const e = (() => { try { adapterMeta(g); } catch (x) { return x; } })() as GgufError;
      expect(e, name).toBeInstanceOf(GgufError);
      expect(e.field).toBe(ALORA_INVOCATION_KEY);
      expect(e.offset).toBe(g.kv.get(ALORA_INVOCATION_KEY)!.offset);
      expect(e.reason).toContain(`got ${got}`);
      using b = openGguf(BASE);
      expect(() => checkAdapter(b, g)).toThrow(GgufError);
    }
  });

  it("invocationTokensProblem: integer ids from 0 to 2^32 - 1, inside the vocabulary when it is known", () => {
    expect(invocationTokensProblem([0, 1, 4294967295])).toBeUndefined();
    expect(invocationTokensProblem([0, 511], 512)).toBeUndefined();
    expect(invocationTokensProblem([4294967296])).toMatch(/item 0 is 4294967296, not a token id/);
    expect(invocationTokensProblem([1, -1])).toMatch(/item 1 is -1/);
    expect(invocationTokensProblem([1.5])).toMatch(/not a token id/);
    expect(invocationTokensProblem(["7"])).toMatch(/item 0 is "7"/);
    expect(invocationTokensProblem(385)).toMatch(/must be an array/);
    expect(invocationTokensProblem([])).toMatch(/is empty/);
  });

  it("vocabularySize counts tokenizer.ggml.tokens (llama.cpp's n_vocab)", () => {
    using b = openGguf(BASE);
    expect(vocabularySize(b)).toBe(512);
    using t = openGguf(fixture("models/llama-2-tiny-random.gguf"));
    expect(vocabularySize(t)).toBe(32000);
    using a = openGguf(S1);
    expect(vocabularySize(a)).toBeUndefined();
  });
});
