// Generation: greedy text as llama.cpp gives it, seeded determinism, stop strings, abort, streaming, serialisation.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Runtime } from "../../src/runtime/index.js";
import { StopMatcher } from "../../src/runtime/generation.js";
import { S1, S2, openCpu } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const PROMPT = "Once upon a time";
// llama.cpp's greedy continuation of the prompt on stories260K (fixtures README).
const GREEDY = ", there was a little girl named Lily. She loved to play outside in the p";

describe("generate", () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await openCpu();
    await rt.adapters.load("s1", S1);
    await rt.adapters.load("s2", S2);
  });
  afterAll(async () => rt?.dispose());

  it("greedy decoding reproduces llama.cpp's continuation, streamed in pieces", async () => {
    const s = rt.session();
    const g = s.generate(PROMPT, { maxTokens: 24 });
    const pieces: string[] = [];
    for await (const p of g) pieces.push(p);
    const r = await g.result;
    expect(pieces.join("")).toBe(r.text);
    expect(pieces.length).toBeGreaterThan(5);
    expect(GREEDY.startsWith(r.text) || r.text.startsWith(GREEDY)).toBe(true);
    expect(r.text.length).toBeGreaterThan(40);
    expect(r.generatedTokens).toBe(24);
    expect(r.promptTokens).toBe(5);
    expect(r.finishReason).toBe("length");
    expect(r.timings.decodeTokens).toBe(23);
    await s.dispose();
  });

  it("seeded sampling is deterministic; another seed or an adapter changes the text", async () => {
    const s = rt.session();
    const o = { maxTokens: 40, temperature: 1, topK: 40, topP: 0.95, seed: 7 };
    const a = await s.complete(PROMPT, o);
    const b = await s.complete(PROMPT, o);
    const other = rt.session();
    const c = await other.complete(PROMPT, o);
    expect(b.text).toBe(a.text);
    expect(c.text).toBe(a.text);
    const d = await s.complete(PROMPT, { ...o, seed: 8 });
    expect(d.text).not.toBe(a.text);
    await s.setAdapters({ s1: 1 });
    const e = await s.complete(PROMPT, { maxTokens: 40 });
    const greedyBase = await other.complete(PROMPT, { maxTokens: 40 });
    expect(e.text).not.toBe(greedyBase.text);
    expect(e.adapters).toEqual({ s1: 1 });
    await s.dispose();
    await other.dispose();
  });

  it("stops before a stop string and reports why", async () => {
    const s = rt.session();
    const r = await s.complete(PROMPT, { maxTokens: 40, stop: ["Lily"] });
    expect(r.finishReason).toBe("stop");
    expect(r.text).toBe(", there was a little girl named ");
    await s.dispose();
  });

  it("an abort signal ends the generation early", async () => {
    const s = rt.session();
    const ac = new AbortController();
    const g = s.generate(PROMPT, { maxTokens: 100, signal: ac.signal });
    let n = 0;
    for await (const _ of g) if (++n === 3) ac.abort();
    const r = await g.result;
    expect(r.finishReason).toBe("abort");
    expect(r.generatedTokens).toBeLessThan(100);
    await s.dispose();
  });

  it("calls on one session run one after another; a reused prefix gives the same text", async () => {
    const s = rt.session();
    const gs = [s.generate(PROMPT, { maxTokens: 12 }), s.generate(PROMPT, { maxTokens: 12 }), s.generate(PROMPT + ", there", { maxTokens: 12 })];
    const rs = await Promise.all(gs.map((g) => g.result));
    expect(rs[1].text).toBe(rs[0].text);
    expect(rs[1].reusedPromptTokens).toBe(4);
    const fresh = rt.session();
    const ref = await fresh.complete(PROMPT + ", there", { maxTokens: 12 });
    expect(rs[2].text).toBe(ref.text);
    await s.dispose();
    await fresh.dispose();
  });

  it("a swap requested during a generation applies after the current token, then the text continues under the new set", async () => {
    const s = rt.session();
    const g = s.generate(PROMPT, { maxTokens: 30 });
    let n = 0;
    let swapped: Promise<void> | undefined;
    for await (const _ of g) if (++n === 2) swapped = s.setAdapters({ s2: 1 });
    await swapped;
    const r = await g.result;
    expect(r.adapterChanges).toBe(1);
    expect(r.adapters).toEqual({ s2: 1 });
    expect(r.generatedTokens).toBe(30);
    // Some k >= 2 splits the tokens: before it the base's greedy tokens, after it exactly what a fresh
    // s2 context generates after the prompt and those k tokens.
    const base = rt.session();
    const baseTokens = (await base.complete(PROMPT, { maxTokens: 30 })).tokens;
    const prompt = base.cachedTokens.slice(0, 5);
    const fresh = rt.session({ adapters: { s2: 1 } });
    let split = -1;
    for (let k = 2; k < 30 && split < 0; k++) {
      if (r.tokens[k - 1] !== baseTokens[k - 1]) break;
      const cont = await fresh.complete([...prompt, ...r.tokens.slice(0, k)], { maxTokens: 30 - k, reuseCache: false });
      if (cont.tokens.join() === r.tokens.slice(k).join()) split = k;
    }
    expect(split).toBeGreaterThanOrEqual(2);
    expect(r.tokens.join()).not.toBe(baseTokens.join());
    await fresh.dispose();
    await base.dispose();
    await s.dispose();
  });

  it("stats report swaps and token rates", async () => {
    const st = rt.stats();
    expect(st.swaps.count).toBeGreaterThan(0);
    expect(st.tokens.base.generated).toBeGreaterThan(0);
    expect(st.tokens.adapted.generated).toBeGreaterThan(0);
    expect(st.memory.rss).toBeGreaterThan(0);
    expect(st.device).toBe("cpu");
  });
});

describe("StopMatcher", () => {
  it("holds back a possible stop prefix and cuts before the stop", () => {
    const m = new StopMatcher(["END"]);
    expect(m.update("abc E").piece).toBe("abc ");
    expect(m.update("abc EN").piece).toBe("");
    const r = m.update("abc END more");
    expect(r).toEqual({ piece: "", stopped: true, text: "abc " });
    const m2 = new StopMatcher(["END"]);
    m2.update("abc E");
    expect(m2.update("abc Ex").piece).toBe("Ex");
  });
});
