// The wasm engine on a generated qwen2 model (GQA, q/k/v biases, neox RoPE, base 1e6, tied output, Q4_K/Q6_K) against llama.cpp.
import path from "node:path";
import { describe, expect, test } from "vitest";
import { EngineContext } from "../../src/backends/wasm/engine/index.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { scratchDir } from "../fixtures.js";
import { compareLogits, engineFor, llamaReference } from "./helpers.js";
import { openGguf } from "../../src/gguf/reader.js";
import { synthAdapter } from "../../src/tools/synth.js";
import { KQUANT_SHAPE, writeKQuantModel } from "./kquant-model.js";

describe("generated qwen2 model with Q4_K and Q6_K weights", () => {
  const file = path.join(scratchDir(), "qwen2-kquant.gguf");
  const types = writeKQuantModel(file);
  const tokens = [1, 17, 300, 42, 511, 7, 128, 64];

  test("the file has what the test is about", async () => {
    expect(new Set(types.values())).toEqual(new Set([GgmlType.Q4_K, GgmlType.Q6_K]));
    const model = await engineFor(file);
    const c = model.config;
    expect(c.architecture).toBe("qwen2");
    expect(c.ropeNeox).toBe(true);
    expect(c.ropeBase).toBe(1000000);
    expect(c.nHeadKv).toBeLessThan(c.nHead);
    expect(model.weights.tiedOutput).toBe(true);
    expect(model.weights.layers[0].bq).toBeDefined();
  });

  test("last-position logits match llama.cpp within 1e-2 normwise, at every prompt length", async () => {
    const model = await engineFor(file);
    for (const n of [1, 4, tokens.length]) {
      const ctx = new EngineContext(model, 64);
      const logits = ctx.evaluate(tokens.slice(0, n));
      ctx.dispose();
      const ref = await llamaReference(file, tokens.slice(0, n), { batchSize: 1 });
      expect(compareLogits(logits, ref.logProbs).normwise).toBeLessThanOrEqual(1e-2);
    }
  });

  test("with a rank-8 adapter on all seven projections it matches llama.cpp with the same adapter (f32 halves; compact within 4e-2)", async () => {
    const adapterFile = path.join(path.dirname(file), "qwen2-r8.gguf");
    synthAdapter(adapterFile, { shape: KQUANT_SHAPE, rank: 8, alpha: 16, seed: 4 });
    const model = await engineFor(file);
    const af = openGguf(adapterFile);
    const adapter = model.loadAdapter(af, { precision: "f32" });
    const compact = model.loadAdapter(af, { precision: "q8" });
    af.close();
    const base = new EngineContext(model, 64).evaluate(tokens);
    const ctx = new EngineContext(model, 64, [{ adapter, scale: 0.75 }]);
    const logits = ctx.evaluate(tokens);
    const ref = await llamaReference(file, tokens, { batchSize: 1, adapters: [{ filePath: adapterFile, scale: 0.75 }] });
    expect(compareLogits(logits, ref.logProbs).normwise).toBeLessThanOrEqual(1e-2);
    // the adapter does change the output, so the check above can fail
    expect(compareLogits(base, ref.logProbs).normwise).toBeGreaterThan(1e-2);
    // compact halves: within the bound stated in adapters.test.ts
    expect([...compact.pairs.values()].every((p) => p.q8)).toBe(true);
    const lq = new EngineContext(model, 64, [{ adapter: compact, scale: 0.75 }]).evaluate(tokens);
    expect(compareLogits(lq, ref.logProbs).normwise).toBeLessThanOrEqual(4e-2);
  });

  test("normal RoPE instead of neox would be far off (the check can fail)", async () => {
    const model = await engineFor(file);
    model.config.ropeNeox = false;
    const ctx = new EngineContext(model, 64);
    const logits = ctx.evaluate(tokens);
    const ref = await llamaReference(file, tokens, { batchSize: 1 });
    expect(compareLogits(logits, ref.logProbs).normwise).toBeGreaterThan(2e-2);
  });
});
