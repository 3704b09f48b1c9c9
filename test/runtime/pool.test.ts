// Session pool over the scheduler: KV states kept per adapter set, LRU reuse of slots, and queueing when oversubscribed.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AdapterNameError } from "../../src/errors.js";
import type { Runtime } from "../../src/runtime/index.js";
import { S1, S2, openCpu } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

describe("session pool", () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await openCpu();
    await rt.adapters.load("s1", S1);
    await rt.adapters.load("s2", S2);
  });
  afterAll(async () => rt?.dispose());

  it("keeps each set's states, reuses them when switching back, drops the least recently used", async () => {
    const pool = rt.pool({ maxSessions: 2, maxBytes: 0 });
    const prompt = "Once upon a time, there was a little girl";
    const a1 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 6 }).result;
    const b1 = await pool.generate({ s2: 1 }, prompt, { maxTokens: 6 }).result;
    expect(a1.reusedPromptTokens).toBe(0);
    expect(b1.reusedPromptTokens).toBe(0);
    expect(b1.text).not.toBe(a1.text);
    const a2 = await pool.get({ s1: 1 }).complete(prompt, { maxTokens: 6 });
    expect(a2.reusedPromptTokens).toBe(a2.promptTokens - 1);
    expect(a2.text).toBe(a1.text);
    expect(pool.keys()).toEqual(["s2=1", "s1=1"]);
    await pool.generate({}, prompt, { maxTokens: 2 }).result; // third set: takes s2's slot
    expect(pool.keys()).toEqual(["s1=1", ""]);
    expect(pool.counts).toMatchObject({ hits: 1, misses: 3, evictions: 1 });
    const b2 = await pool.generate({ s2: 1 }, prompt, { maxTokens: 6 }).result; // back, but cold
    expect(b2.reusedPromptTokens).toBe(0);
    expect(b2.text).toBe(b1.text);
    await pool.dispose();
  });

  it("more concurrent generations than maxSessions wait for a slot instead of crashing", async () => {
    // regression: four concurrent pool.generate calls on different sets with maxSessions 2 threw
    // "Cannot read properties of null (reading 'cachedTokens')" (an evicted session still had a generation queued)
    const sets: Record<string, number>[] = [{}, { s1: 1 }, { s2: 1 }, { s1: 0.5, s2: 0.5 }];
    const prompt = "One day, Lily went";
    const expected: string[] = [];
    for (const set of sets) {
      const s = rt.session({ adapters: set });
      expected.push((await s.complete(prompt, { maxTokens: 12 })).text);
      await s.dispose();
    }
    const pool = rt.pool({ maxSessions: 2 });
    const results = await Promise.all([...sets, ...sets].map((set) => pool.generate(set, prompt, { maxTokens: 12 }).result));
    expect(results.map((r) => r.text)).toEqual([...expected, ...expected]);
    expect(pool.size).toBe(2);
    await pool.dispose();
  });

  it("parks the states of a set whose slot is taken, within maxBytes, and restores them when the set returns", async () => {
    const pool = rt.pool({ maxSessions: 1, maxBytes: 64 * 2 ** 20 });
    // longer than the 32 tokens worth parking
    const prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big red ball under a tree and ran to get it.";
    const a1 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 4 }).result;
    await pool.generate({ s2: 1 }, "One day", { maxTokens: 2 }).result;
    const a2 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 4 }).result;
    expect(pool.counts).toMatchObject({ parked: 1, restored: 1 });
    expect(a2.reusedPromptTokens).toBe(a2.promptTokens - 1);
    expect(a2.text).toBe(a1.text);
    expect(pool.stats().parkedBytes).toBeLessThanOrEqual(64 * 2 ** 20);
    await pool.dispose();
  });

  it("unloading an adapter ends the pool's handles using it", async () => {
    await rt.adapters.load("s3", S2);
    const pool = rt.pool({ maxSessions: 3 });
    const s = pool.get({ s3: 1 });
    await s.complete("One day", { maxTokens: 2 });
    const keep = pool.get({ s1: 1 });
    await rt.adapters.unload("s3");
    expect(s.isDisposed).toBe(true);
    expect(keep.isDisposed).toBe(false);
    expect(() => pool.get({ s3: 1 })).toThrow(AdapterNameError);
    await pool.dispose();
    expect(keep.isDisposed).toBe(true);
  });
});
