// The wasm backend behind the Backend interface, and the engine on the core's worker pool.
import path from "node:path";
import { describe, expect, test } from "vitest";
import { WasmBackend, loadEngineModel } from "../../src/backends/wasm.js";
import { EngineContext } from "../../src/backends/wasm/engine/index.js";
import { createPool } from "../../src/core/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { synthAdapter } from "../../src/tools/synth.js";
import { fixture, scratchDir } from "../fixtures.js";
import { compareLogits, engineFor, llamaReference } from "./helpers.js";
import { KQUANT_SHAPE, writeKQuantModel } from "./kquant-model.js";

describe("WasmBackend", () => {
  test("tokenizes, samples greedily and scores like llama.cpp; adapters swap live and free", async () => {
    const modelPath = fixture("models/stories260K.gguf");
    const b = await WasmBackend.open({ modelPath, threads: 2 });
    try {
      expect(b.name).toBe("wasm");
      expect(b.vocabSize).toBe(512);
      const tokens = b.tokenize("Once upon a time", true);
      expect(tokens).toEqual([1, 403, 407, 261, 378]);
      const ctx = await b.createContext({ contextSize: 128, adapters: [], live: true });
      const out: number[] = [];
      for await (const t of ctx.sample(tokens, { temperature: 0, topK: 40, topP: 0.95, seed: 1 })) {
        out.push(t);
        if (out.length === 20) break;
      }
      expect(b.detokenize(out, tokens)).toBe(", there was a little girl named Lily. She loved to play outsid");
      expect(ctx.cachedTokens.length).toBe(tokens.length + 19);
      expect(ctx.memoryBytes).toBeGreaterThan(0);

      const s1 = await b.loadAdapter(fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf"));
      await ctx.setAdapters([{ adapter: s1, scale: 1 }]);
      await ctx.clear();
      const lp = await ctx.nextLogProbs(tokens);
      const ref = await llamaReference(modelPath, tokens, { batchSize: 1, adapters: [{ filePath: s1.path, scale: 1 }] });
      expect(compareLogits(Float32Array.from(lp), ref.logProbs).normwise).toBeLessThanOrEqual(1e-4);
      await expect(b.freeAdapter(s1)).rejects.toThrow(/attached/);
      await ctx.setAdapters([]);
      await b.freeAdapter(s1);
      expect(s1.freed).toBe(true);
      await expect(ctx.setAdapters([{ adapter: s1, scale: 1 }])).rejects.toThrow(/freed/);
      expect(b.isEndOfGeneration(2)).toBe(true);
      expect(b.isEndOfGeneration(403)).toBe(false);
      await ctx.dispose();
    } finally {
      await b.dispose();
    }
  });
});

test("WasmBackend's adapterPrecision option reaches the engine", async () => {
  const modelPath = fixture("models/stories260K-Q4_0.gguf");
  const s1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
  for (const [precision, compact] of [[undefined, false], ["f32", false], ["q8", true]] as const) {
    const b = await WasmBackend.open({ modelPath, threads: 1, adapterPrecision: precision });
    try {
      const a = (await b.loadAdapter(s1)) as unknown as { engine: { pairs: Map<string, { q8?: unknown }> } };
      expect([...a.engine.pairs.values()].some((p) => p.q8 !== undefined), String(precision)).toBe(compact);
    } finally {
      await b.dispose();
    }
  }
});

describe("engine on the worker pool", () => {
  test("products split over two threads give the single-thread logits exactly, with and without an adapter", async () => {
    const dir = scratchDir();
    const file = path.join(dir, "qwen2-kquant.gguf");
    writeKQuantModel(file);
    const adapterFile = path.join(dir, "qwen2-r8.gguf");
    synthAdapter(adapterFile, { shape: KQUANT_SHAPE, rank: 8, alpha: 16, seed: 9 });
    const pool = await createPool({ threads: 2, minParallelBytes: 1 });
    try {
      const tokens = [1, 17, 300, 42];
      const par = loadEngineModel(pool.core, file);
      const one = await engineFor(file);
      const af = openGguf(adapterFile);
      const a = new EngineContext(par, 16).evaluate(tokens);
      const b = new EngineContext(one, 16).evaluate(tokens);
      expect(a).toEqual(b);
      for (const precision of ["f32", "q8"] as const) {
        const ap = par.loadAdapter(af, { precision }), a1 = one.loadAdapter(af, { precision });
        // with "q8" the compact B rows are split over the threads too
        expect([...ap.pairs.values()].every((p) => (p.q8 !== undefined) === (precision === "q8")), precision).toBe(true);
        const al = new EngineContext(par, 16, [{ adapter: ap, scale: 0.8 }]).evaluate(tokens);
        const bl = new EngineContext(one, 16, [{ adapter: a1, scale: 0.8 }]).evaluate(tokens);
        expect(al, precision).toEqual(bl);
        expect(al, precision).not.toEqual(a);
      }
      af.close();
    } finally {
      pool.dispose();
    }
  });
});

describe("engine portability", () => {
  test("the engine modules import no host API (file, process, worker) directly or through the GGUF reader", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const dir = path.resolve(import.meta.dirname, "../../src/backends/wasm/engine");
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const src = readFileSync(path.join(dir, f), "utf8");
      const imports = [...src.matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
      for (const i of imports) {
        expect(i, `${f} imports ${i}`).not.toMatch(/^node:|gguf\/reader|byte-source|platform-node|core\/index|node-llama-cpp/);
      }
      expect(src, f).not.toMatch(/\bprocess\.|\brequire\(/);
    }
  });
});
