// The Runtime on the wasm engine: the same API and the same greedy text as llama.cpp, and "auto" falling back to it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/index.js";
import { mulberry32 } from "../../src/random.js";
import type { WasmBackend } from "../../src/backends/wasm.js";
import { MODEL, MODEL_Q4, S1, S2, openCpu } from "./helpers.js";

const PROMPT = "Once upon a time";
const GREEDY = { maxTokens: 24, temperature: 0 };

describe("Runtime on the wasm backend", () => {
  let native: Runtime;
  let wasm: Runtime;
  beforeAll(async () => {
    native = await openCpu();
    wasm = await openCpu({ backend: "wasm" });
    for (const rt of [native, wasm]) {
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
    }
  });
  afterAll(async () => {
    await native?.dispose();
    await wasm?.dispose();
  });

  it("opens the wasm engine when asked", () => {
    expect(wasm.backend.name).toBe("wasm");
    expect(wasm.backendNotice).toBeUndefined();
  });

  it("generates llama.cpp's greedy text for the base, each adapter, a mix, and after live swaps", async () => {
    const sets: Record<string, number>[] = [{}, { s1: 1 }, { s2: 1 }, { s1: 0.5, s2: 0.5 }];
    const sn = native.session();
    const sw = wasm.session();
    for (const set of sets) {
      await sn.setAdapters(set);
      await sw.setAdapters(set);
      const expected = (await sn.complete(PROMPT, GREEDY)).text;
      expect((await sw.complete(PROMPT, GREEDY)).text, JSON.stringify(set)).toBe(expected);
    }
    await sn.dispose();
    await sw.dispose();
  });

  it("detokenizes generated tokens after a prompt as the prompt's and the tokens' text less the prompt's, and as llama.cpp does", () => {
    const backend = wasm.backend as WasmBackend;
    const tok = backend.tokenizer;
    const r = mulberry32(5);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(r() * backend.vocabSize));
    const decoder = new TextDecoder();
    for (let i = 0; i < 200; i++) {
      const before = [1, ...ids(1 + (i % 7))];
      const tokens = ids(1 + (i % 13));
      // the definition: bytes of both less the bytes of the prompt, then UTF-8
      const defined = decoder.decode(tok.detokenizeBytes([...before, ...tokens]).subarray(tok.detokenizeBytes(before).length));
      const got = backend.detokenize(tokens, before);
      expect(got, JSON.stringify({ before, tokens })).toBe(defined);
      expect(backend.detokenize(tokens, before), "a second time (pieces kept)").toBe(got);
      expect(got, JSON.stringify({ before, tokens })).toBe(native.backend.detokenize(tokens, before));
    }
  });

  it("unloads an adapter attached to a live wasm session; the session continues with the rest", async () => {
    const s = wasm.session({ adapters: { s1: 1, s2: 1 } });
    await s.complete(PROMPT, { maxTokens: 4 });
    await wasm.adapters.unload("s1");
    expect(s.adapters).toEqual({ s2: 1 });
    const onlyS2 = wasm.session({ adapters: { s2: 1 } });
    expect((await s.complete(PROMPT, GREEDY)).text).toBe((await onlyS2.complete(PROMPT, GREEDY)).text);
    await s.dispose();
    await onlyS2.dispose();
    await wasm.adapters.load("s1", S1);
  });
});

describe("backend auto", () => {
  it("falls back to the wasm engine when no native binary can be used, and says why", async () => {
    // A GPU API this platform cannot have makes the native backend unavailable.
    const absent = process.platform === "darwin" ? "vulkan" : "metal";
    const rt = await Runtime.open({ model: MODEL, backend: "auto", gpu: absent, threads: 1, contextSize: 128 });
    try {
      expect(rt.backend.name).toBe("wasm");
      expect(rt.backendNotice).toMatch(/running on the wasm engine/);
      expect((await rt.session().complete(PROMPT, { maxTokens: 8 })).text.length).toBeGreaterThan(0);
    } finally {
      await rt.dispose();
    }
  });
});

describe("Runtime option adapterPrecision", () => {
  it("reaches the wasm engine: q8 adapters generate, and their halves are the compact ones", async () => {
    await using rt = await Runtime.open({ model: MODEL_Q4, backend: "wasm", threads: 1, adapterPrecision: "q8" });
    const engine = (rt.backend as unknown as { model: { adapterPrecision: string } }).model;
    expect(engine.adapterPrecision).toBe("q8");
    await rt.adapters.load("s1", S1);
    const r = await rt.session({ adapters: { s1: 1 } }).generate(PROMPT, { maxTokens: 8, temperature: 0 }).result;
    expect(r.generatedTokens).toBe(8);
  });
});
