// Adapter registry: bad inputs are typed errors that leave the runtime working; unload detaches first; leak check.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AdapterLoadError, AdapterMismatchError, AdapterNameError, BackendUnavailableError, InvalidArgumentError } from "../../src/errors.js";
import { GgufError } from "../../src/gguf/errors.js";
import { Runtime } from "../../src/runtime/index.js";
import { scratchDir } from "../fixtures.js";
import { MODEL, MODEL_Q4, S1, S2, WRONG_BASE, openCpu, sameArray } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const PROMPT = "Once upon a time";

describe("bad adapter inputs", () => {
  let rt: Runtime;
  let dir: string;
  beforeAll(async () => {
    rt = await openCpu();
    await rt.adapters.load("s1", S1);
    dir = scratchDir();
  });
  afterAll(async () => rt?.dispose());

  /** The runtime still generates with s1 as before. */
  async function stillWorks(expected: string) {
    const s = rt.session({ adapters: { s1: 1 } });
    expect((await s.complete(PROMPT, { maxTokens: 8 })).text).toBe(expected);
    expect(rt.adapters.list().map((a) => a.name)).toEqual(["s1"]);
    await s.dispose();
  }

  it("each bad input is a typed error and changes nothing", async () => {
    const s = rt.session({ adapters: { s1: 1 } });
    const before = (await s.complete(PROMPT, { maxTokens: 8 })).text;

    // an adapter for another base: a runtime on llama-2-tiny-random given the stories260K adapter
    const other = await openCpu({ model: WRONG_BASE });
    try {
      const e = await other.adapters.load("x", S1).catch((x) => x);
      expect(e).toBeInstanceOf(AdapterMismatchError);
      expect(e.tensor).toMatch(/^blk\.0\.[a-z_]+\.weight\.lora_[ab]$/);
      expect(e.expected).toMatch(/^\[\d+, \d+\]$/);
      expect(e.actual).toMatch(/^\[\d+, \d+\]$/);
      expect(e.expected).not.toBe(e.actual);
      expect(e.message).toContain(e.tensor);
      expect(other.adapters.list()).toEqual([]);
      expect((await other.session().complete("Hello", { maxTokens: 2 })).generatedTokens).toBe(2);
    } finally {
      await other.dispose();
    }

    // truncated adapter: the reader refuses it before llama.cpp sees it
    const truncated = join(dir, "truncated.gguf");
    const bytes = readFileSync(S2);
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const t = await rt.adapters.load("t", truncated).catch((x) => x);
    expect(t).toBeInstanceOf(GgufError);
    expect(t.file).toContain("truncated.gguf");
    await stillWorks(before);

    // a model file given as an adapter
    const m = await rt.adapters.load("m", MODEL_Q4).catch((x) => x);
    expect(m).toBeInstanceOf(AdapterMismatchError);
    expect(m.tensor).toBe("general.type");
    expect(m.expected).toBe("adapter");
    await stillWorks(before);

    // a missing file
    const missing = await rt.adapters.load("gone", join(dir, "nope.gguf")).catch((x) => x);
    expect(missing).toBeInstanceOf(AdapterLoadError);
    expect(missing.message).toContain("no such file");
    await stillWorks(before);

    // a name already taken, a bad name, unknown names in a set, a bad scale
    await expect(rt.adapters.load("s1", S2)).rejects.toBeInstanceOf(AdapterNameError);
    await expect(rt.adapters.load("a,b", S2)).rejects.toBeInstanceOf(AdapterNameError);
    expect(() => rt.session({ adapters: { nope: 1 } })).toThrow(AdapterNameError);
    expect(() => s.setAdapters({ s1: Number.NaN })).toThrow(InvalidArgumentError);
    await expect(rt.adapters.unload("nope")).rejects.toBeInstanceOf(AdapterNameError);
    expect(s.adapters).toEqual({ s1: 1 });
    expect((await s.complete(PROMPT, { maxTokens: 8 })).text).toBe(before);
    await s.dispose();
    await stillWorks(before);
  });

  it("a GPU API this platform cannot have is BackendUnavailableError for native; a missing model is a typed error", async () => {
    // a GPU API this platform cannot have
    const absent = process.platform === "darwin" ? "vulkan" : "metal";
    const e = await Runtime.open({ model: MODEL, backend: "native", gpu: absent }).catch((x) => x);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.backend).toBe(`native/${absent}`);
    await expect(Runtime.open({ model: join(dir, "missing.gguf"), gpu: false })).rejects.toThrow(/missing\.gguf/);
  });
});

describe("unload", () => {
  it("unloading an adapter attached to a running generation: no crash, the session continues with the rest", async () => {
    const rt = await openCpu();
    try {
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
      const s = rt.session({ adapters: { s1: 1, s2: 0.5 } });
      const idle = rt.session({ adapters: { s1: 1 } });
      await idle.ready();
      const g = s.generate(PROMPT, { maxTokens: 40 });
      let n = 0;
      let unloading: Promise<void> | undefined;
      for await (const _ of g) if (++n === 3) unloading = rt.adapters.unload("s1");
      await unloading;
      const r = await g.result;
      expect(r.generatedTokens).toBe(40);
      expect(r.adapters).toEqual({ s2: 0.5 });
      expect(r.adapterChanges).toBe(1);
      expect(s.adapters).toEqual({ s2: 0.5 });
      expect(idle.adapters).toEqual({});
      expect(rt.adapters.list().map((a) => a.name)).toEqual(["s2"]);
      // what the session computes now equals a fresh session with the rest of its set
      const after = await s.nextLogProbs(PROMPT);
      const fresh = rt.session({ adapters: { s2: 0.5 } });
      expect(sameArray(after, await fresh.nextLogProbs(PROMPT))).toBe(true);
      const base = rt.session();
      expect(sameArray(await idle.nextLogProbs(PROMPT), await base.nextLogProbs(PROMPT))).toBe(true);
      // the same file loads again under the same name
      await rt.adapters.load("s1", S1);
      await s.setAdapters({ s1: 1 });
      expect((await s.complete(PROMPT, { maxTokens: 4 })).generatedTokens).toBe(4);
    } finally {
      await rt.dispose();
    }
  });

  it("two names sharing one file: unloading one keeps the other working", async () => {
    const rt = await openCpu();
    try {
      await rt.adapters.load("x", S1);
      await rt.adapters.load("y", S1, { scale: 0.5 });
      const s = rt.session({ adapters: ["y"] });
      expect(s.adapters).toEqual({ y: 0.5 });
      const before = await s.nextLogProbs(PROMPT);
      await rt.adapters.unload("x");
      expect(sameArray(await s.nextLogProbs(PROMPT), before)).toBe(true);
    } finally {
      await rt.dispose();
    }
  });
});

describe("leak", () => {
  it("200 load/attach/unload cycles keep resident memory bounded", async () => {
    const rt = await openCpu();
    try {
      const s = rt.session();
      const cycle = async (i: number) => {
        await rt.adapters.load("x", i % 2 ? S1 : S2);
        await s.setAdapters({ x: 1 });
        await s.nextLogProbs([1, 403]);
        await rt.adapters.unload("x");
      };
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void; // settle the JS heap before each reading
      for (let i = 0; i < 100; i++) await cycle(i); // warm up the JS heap and the native allocator
      gc();
      const rss0 = process.memoryUsage().rss;
      for (let i = 0; i < 200; i++) await cycle(i);
      gc();
      const growth = process.memoryUsage().rss - rss0;
      console.log(`leak: 200 cycles, rss ${(rss0 / 2 ** 20).toFixed(1)} MiB -> growth ${(growth / 2 ** 20).toFixed(2)} MiB`);
      // llama.cpp takes about 1.5 MiB per loaded adapter here: never freeing them grew RSS by 220 to 310 MiB
      expect(growth).toBeLessThan(40 * 2 ** 20);
      expect(rt.adapters.list()).toEqual([]);
    } finally {
      await rt.dispose();
    }
  });
});
