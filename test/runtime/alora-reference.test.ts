// The aLoRA reference on llama.cpp (native backend): base prefix, then the adapter from the invocation on, cache kept.
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { fixture, scratchDir } from "../fixtures.js";
import { aloraReference, aloraSwitchReference, cpuLlama, nextTokenLogProbs, promptTokens, stagedLogProbs } from "../llama.js";
import { ALORA_TEST_ADAPTER, writeDemoAdapter } from "../../src/tools/demo-adapters.js";
import { openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { GgufValueType } from "../../src/gguf/reader.js";
import { MODEL } from "./helpers.js";
import { tokenLogProbs } from "../tools/helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 60_000 });

const ALORA = { filePath: fixture(`adapters/${ALORA_TEST_ADAPTER.file}`), scale: 1 };
const INVOCATION = [...ALORA_TEST_ADAPTER.invocationTokens!];
const WITH_INVOCATION = "Once upon a time, there was a little girl named Lily. One day, she";
const TWICE = "One day, Lily went to the park. One day, she";
const WITHOUT = "Once upon a time, there was a little girl named Lily. She";

/** Largest |a - b| over the tokens b gives at least 1e-6 (log-probabilities, nats). */
function maxDiff(a: Map<number, number>, b: Map<number, number>): number {
  let m = 0;
  for (const [t, lb] of b) if (lb >= Math.log(1e-6)) m = Math.max(m, Math.abs((a.get(t) ?? -Infinity) - lb));
  return m;
}

describe("the aLoRA test adapter", () => {
  it("its invocation is \"One day,\" as llama.cpp tokenizes it, alone and inside a story", async () => {
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: MODEL });
    try {
      expect([...model.tokenize("One day,")]).toEqual(INVOCATION);
    } finally {
      await model.dispose();
    }
    const tokens = await promptTokens(MODEL, WITH_INVOCATION);
    expect(tokens.slice(16, 19)).toEqual(INVOCATION);
  });

  it("llama.cpp loads it, and refuses the invocation stored as i32 (it reads only u32 arrays)", async () => {
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: MODEL });
    try {
      const ctx = await model.createContext({ contextSize: 64, threads: 1, lora: { adapters: [ALORA] } });
      await ctx.dispose();
      const i32 = join(scratchDir(), "alora-i32.gguf");
      {
        using g = openGguf(ALORA.filePath);
        const kv = kvInputsFrom(g).map((e) => e.key === "adapter.alora.invocation_tokens" ? { key: e.key, type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: INVOCATION } : e);
        writeGguf(i32, { kv, tensors: tensorInputsFrom(g) });
      }
      await expect(model.createContext({ contextSize: 64, threads: 1, lora: { adapters: [{ filePath: i32, scale: 1 }] } })).rejects.toThrow(/LoRA/);
    } finally {
      await model.dispose();
    }
  });
});

describe("the aLoRA reference (llama.cpp: prefix without adapters, then _setLoras and the rest, cache kept)", () => {
  it("starts at the last invocation and differs from the plain LoRA evaluation and from the base", async () => {
    const once = await aloraReference(MODEL, ALORA, WITH_INVOCATION);
    expect(once.start).toBe(16);
    const twice = await aloraReference(MODEL, ALORA, TWICE);
    expect(twice.tokens.slice(1, 4)).toEqual(INVOCATION); // a first occurrence, right after BOS ...
    expect(twice.start).toBe(13); // ... and the last one, where the adapter starts
    for (const ref of [once, twice]) {
      const plain = await stagedLogProbs(MODEL, ref.tokens, [{ end: ref.tokens.length, adapters: [ALORA] }]);
      const base = await stagedLogProbs(MODEL, ref.tokens, [{ end: ref.tokens.length, adapters: [] }]);
      const [fromPlain, fromBase] = [maxDiff(ref.logProbs, plain), maxDiff(ref.logProbs, base)];
      console.log(`aLoRA reference (start ${ref.start} of ${ref.tokens.length} tokens): max |log p diff| ${fromPlain.toFixed(3)} nats from plain LoRA, ${fromBase.toFixed(3)} from the base`);
      // Measured: 1.2 and 2.0 nats from plain LoRA, 5.2 and 4.6 from the base.
      expect(fromPlain).toBeGreaterThan(0.3);
      expect(fromBase).toBeGreaterThan(1);
    }
    // Starting at the first occurrence instead gives another distribution.
    const first = await aloraReference(MODEL, ALORA, twice.tokens, { start: 1 });
    expect(maxDiff(first.logProbs, twice.logProbs)).toBeGreaterThan(0.1);
  });

  it("is the base, exactly, where the invocation is absent", async () => {
    const ref = await aloraReference(MODEL, ALORA, WITHOUT);
    expect(ref.start).toBeUndefined();
    const base = await nextTokenLogProbs(MODEL, [], WITHOUT); // a context made without adapters, all threads
    expect(maxDiff(ref.logProbs, base)).toBe(0);
    const plain = await stagedLogProbs(MODEL, ref.tokens, [{ end: ref.tokens.length, adapters: [ALORA] }]);
    const fromPlain = maxDiff(ref.logProbs, plain);
    console.log(`aLoRA reference without the invocation: ${fromPlain.toFixed(3)} nats from plain LoRA, equal to the base`);
    expect(fromPlain).toBeGreaterThan(1); // measured 6.7 nats: the adapter would have changed it
  });

  it("is the plain LoRA evaluation, exactly, when the invocation starts at the first token (nothing before it)", async () => {
    const tokens = [...INVOCATION, 383]; // "One day, she" without BOS
    const ref = await aloraReference(MODEL, ALORA, tokens);
    expect(ref.start).toBe(0);
    const [plain] = await tokenLogProbs(MODEL, [ALORA], [tokens]); // a context made with the adapter (public API)
    expect(maxDiff(ref.logProbs, plain)).toBe(0);
  });

  it("equals llama-server's way of disabling the adapter (scale 0 before the invocation); its start one token early differs", async () => {
    const ref = await aloraReference(MODEL, ALORA, WITH_INVOCATION);
    const start = ref.start!;
    const scaleZero = await stagedLogProbs(MODEL, ref.tokens, [{ end: start, adapters: [{ ...ALORA, scale: 0 }] }, { end: ref.tokens.length, adapters: [ALORA] }]);
    expect(maxDiff(scaleZero, ref.logProbs)).toBe(0);
    // llama-server (node-llama-cpp 3.21.1's llama.cpp) turns the adapter on at start - 1; PEFT's mask starts at the invocation.
    const early = await aloraReference(MODEL, ALORA, ref.tokens, { start: start - 1 });
    const shift = maxDiff(early.logProbs, ref.logProbs);
    console.log(`aLoRA from start - 1 (llama-server's boundary) vs from start: max |log p diff| ${shift.toFixed(3)} nats`);
    expect(shift).toBeGreaterThan(0.1); // measured 0.82 nats
  });

  it("keeps the base prefix's cache across a switch between two aLoRA adapters: each equals its own fresh reference", async () => {
    const second = join(scratchDir(), "alora-second.gguf");
    writeDemoAdapter(MODEL, second, { ...ALORA_TEST_ADAPTER, file: "alora-second.gguf", seed: 4004, taskName: "alora-second" });
    const other = { filePath: second, scale: 1 };
    const tokens = await promptTokens(MODEL, WITH_INVOCATION);
    const switched = await aloraSwitchReference(MODEL, tokens, 16, [ALORA, other, ALORA]);
    const fresh = [await aloraReference(MODEL, ALORA, tokens), await aloraReference(MODEL, other, tokens)];
    expect(maxDiff(switched[0], fresh[0].logProbs)).toBe(0);
    expect(maxDiff(switched[1], fresh[1].logProbs)).toBe(0);
    expect(maxDiff(switched[2], fresh[0].logProbs)).toBe(0);
    expect(maxDiff(fresh[0].logProbs, fresh[1].logProbs)).toBeGreaterThan(0.1);
  });
});
