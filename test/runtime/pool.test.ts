// Session pool: one session per adapter set, LRU eviction by count, switching back reuses the task's KV cache.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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

  it("keeps a session per set, reuses its cache when switching back, evicts the least recently used", async () => {
    const pool = rt.pool({ maxSessions: 2 });
    const prompt = "Once upon a time, there was a little girl";
    const a1 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 6 }).result;
    const b1 = await pool.generate({ s2: 1 }, prompt, { maxTokens: 6 }).result;
    expect(a1.reusedPromptTokens).toBe(0);
    expect(b1.text).not.toBe(a1.text);
    const a2 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 6 }).result;
    expect(a2.reusedPromptTokens).toBe(a2.promptTokens - 1);
    expect(a2.text).toBe(a1.text);
    expect(pool.keys()).toEqual(["s2=1", "s1=1"]);
    const evicted = pool.get({ s2: 1 });
    await pool.generate({}, prompt, { maxTokens: 2 }).result; // third set: evicts s1=1
    expect(pool.keys()).toEqual(["s2=1", ""]);
    expect(pool.counts).toEqual({ hits: 2, misses: 3, evictions: 1 });
    expect(evicted.isDisposed).toBe(false);
    const a3 = await pool.generate({ s1: 1 }, prompt, { maxTokens: 6 }).result; // back, but cold
    expect(a3.reusedPromptTokens).toBe(0);
    expect(a3.text).toBe(a1.text);
    await pool.dispose();
  });

  it("a byte bound keeps only as many sessions as fit", async () => {
    const probe = rt.session();
    await probe.ready();
    const one = probe.memoryBytes;
    await probe.dispose();
    expect(one).toBeGreaterThan(0);
    const pool = rt.pool({ maxSessions: 10, maxBytes: Math.floor(one * 2.5) });
    for (const set of [{}, { s1: 1 }, { s2: 1 }, { s1: 1, s2: 1 }] as Record<string, number>[]) await pool.generate(set, "One day", { maxTokens: 1 }).result;
    expect(pool.size).toBe(2);
    expect(pool.keys()).toEqual(["s2=1", "s1=1,s2=1"]);
    expect(pool.bytes).toBeLessThanOrEqual(Math.floor(one * 2.5));
    expect(pool.counts.evictions).toBe(2);
    await pool.dispose();
  });

  it("unloading an adapter drops the pooled sessions using it", async () => {
    await rt.adapters.load("s3", S2);
    const pool = rt.pool({ maxSessions: 3 });
    const s = pool.get({ s3: 1 });
    await s.complete("One day", { maxTokens: 2 });
    pool.get({ s1: 1 });
    await rt.adapters.unload("s3");
    expect(s.isDisposed).toBe(true);
    expect(pool.keys()).toEqual(["s1=1"]);
    await pool.dispose();
  });
});
