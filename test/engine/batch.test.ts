// Batched prompt evaluation: the same logits and cache states as evaluating one token at a time, bit for bit.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EngineContext, EngineModel, type EngineAdapter } from "../../src/backends/wasm/engine/index.js";
import type { AdapterPrecision } from "../../src/backends/wasm/engine/adapters.js";
import { createPool, KernelPool } from "../../src/core/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { synthAdapter } from "../../src/tools/synth.js";
import { fixture, scratchDir } from "../fixtures.js";
import { sameBits } from "../core/helpers.js";
import { engineFor } from "./helpers.js";
import { KQUANT_SHAPE, writeKQuantModel } from "./kquant-model.js";

let pool: KernelPool;
beforeAll(async () => {
  // threshold 0: every product and the attention split over the threads
  pool = await createPool({ threads: 3, maxBytes: 256 << 20, minParallelBytes: 0 });
});
afterAll(() => pool?.dispose());

function promptOf(n: number, vocab: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919 + seed * 104729) % (vocab - 3))));
}

function loadAdapter(model: EngineModel, file: string, precision: AdapterPrecision = "f32"): EngineAdapter {
  const f = openGguf(file);
  try {
    return model.loadAdapter(f, { precision });
  } finally {
    f.close();
  }
}

/** Logits after evaluating `tokens` in one call with the given batch size, then after one decoded token. */
function run(model: EngineModel, tokens: number[], batchTokens: number, adapters: { adapter: EngineAdapter; scale: number }[] = []): Float32Array[] {
  const ctx = new EngineContext(model, 128, adapters);
  ctx.batchTokens = batchTokens;
  try {
    const a = ctx.evaluate(tokens);
    // a decoded token reads every cached K/V row the batch wrote
    const b = ctx.evaluate([model.argmax()]);
    return [a, b];
  } finally {
    ctx.dispose();
  }
}

function expectSame(got: Float32Array[], want: Float32Array[], label: string): void {
  for (let i = 0; i < want.length; i++) expect(sameBits(got[i], want[i]), `${label} (${i === 0 ? "prompt" : "next token"})`).toBe(true);
}

const STORIES = ["stories260K.gguf", "stories260K-Q4_0.gguf", "stories260K-Q8_0.gguf"];
const ADAPTERS = ["stories260K-lora-synthetic-r4-s1.gguf", "stories260K-lora-synthetic-r4-s2.gguf"];

describe("batched prompt evaluation equals the per-token pass", () => {
  for (const name of STORIES) {
    test(`${name}: prompts of 1 to 40 tokens, with and without adapters, one thread and three`, async () => {
      const file = fixture(`models/${name}`);
      const f = openGguf(file);
      const models = [await engineFor(file), new EngineModel(pool.core, f)];
      f.close();
      // compact adapter halves (A in Q8_0, B in int8) on the quantized bases as well
      const precisions: AdapterPrecision[] = name === STORIES[0] ? ["f32"] : ["f32", "q8"];
      for (const model of models) {
        for (const precision of precisions) {
          const label = `${name} ${model === models[0] ? "1 thread" : "3 threads"} ${precision}`;
          const adapters = ADAPTERS.map((a) => loadAdapter(model, fixture(`adapters/${a}`), precision));
          const sets = [[], [{ adapter: adapters[0], scale: 1 }], [{ adapter: adapters[0], scale: 0.5 }, { adapter: adapters[1], scale: -1.25 }]];
          // the base alone does not depend on the adapters' precision
          for (const [i, set] of sets.entries()) {
            if (precision !== "f32" && set.length === 0) continue;
            for (const n of [1, 3, 4, 5, 17, 40]) {
              const tokens = promptOf(n, model.config.nVocab, n + i);
              const want = run(model, tokens, 1, set);
              expectSame(run(model, tokens, 32, set), want, `${label} set ${i} n ${n}`);
              if (n === 17) expectSame(run(model, tokens, 4, set), want, `${label} set ${i} n ${n} in batches of 4`);
            }
          }
          for (const a of adapters) a.free();
        }
      }
    });
  }

  test("flash attention off and f32 activations (one single-token call per token, in several rounds on threads)", async () => {
    const file = fixture("models/stories260K-Q4_0.gguf");
    const f = openGguf(file);
    // the plain Q4_0 layout: grouped rows have an 8-bit-x kernel only
    const models = [await engineFor(file, { repackQ4_0: false }), new EngineModel(pool.core, f, undefined, { repackQ4_0: false })];
    f.close();
    for (const model of models) {
      const tokens = promptOf(29, model.config.nVocab, 9);
      try {
        model.flashAttention = false;
        expectSame(run(model, tokens, 32), run(model, tokens, 1), "softmax attention");
        model.activationsX8 = false;
        expectSame(run(model, tokens, 32), run(model, tokens, 1), "f32 activations");
      } finally {
        model.flashAttention = true;
        model.activationsX8 = true;
      }
    }
  });

  test("generated qwen2 (Q4_K, Q6_K, biases, GQA, tied output) with a rank-8 adapter", async () => {
    const file = path.join(scratchDir(), "qwen2-kquant-batch.gguf");
    writeKQuantModel(file);
    const adapterFile = path.join(scratchDir(), "qwen2-batch-r8.gguf");
    synthAdapter(adapterFile, { shape: KQUANT_SHAPE, rank: 8, alpha: 16, seed: 4 });
    const f = openGguf(file);
    const models = [await engineFor(file), new EngineModel(pool.core, f)];
    f.close();
    for (const model of models) {
      const adapter = loadAdapter(model, adapterFile);
      const compact = loadAdapter(model, adapterFile, "q8");
      for (const set of [[], [{ adapter, scale: 0.75 }], [{ adapter: compact, scale: 0.75 }], [{ adapter: compact, scale: 0.5 }, { adapter, scale: -1 }]]) {
        for (const n of [3, 17, 40]) {
          const tokens = promptOf(n, model.config.nVocab, n);
          const label = `qwen2 n ${n} adapters ${set.map((a) => a.adapter === compact ? "q8" : "f32").join("+")}`;
          expectSame(run(model, tokens, 32, set), run(model, tokens, 1, set), label);
        }
      }
      adapter.free();
      compact.free();
    }
  });

  test("a batch checks its tokens and the context size", async () => {
    const model = await engineFor(fixture("models/stories260K.gguf"));
    const ctx = new EngineContext(model, 8);
    expect(() => ctx.evaluate([1, 2, 3, 4, 5, 6, 7, 8, 9])).toThrow(/cannot take/);
    expect(() => ctx.evaluate([1, 2, model.config.nVocab])).toThrow(/outside the vocabulary/);
    const cache = model.newKvCache(4), big = model.newKvCache(64), terms = model.terms([]);
    expect(() => model.forward([{ cache, terms, tokens: [1, 2, 3], pos0: 2, logits: true }])).toThrow(/context full/);
    expect(() => model.forward([{ cache: big, terms, tokens: new Array(EngineModel.BATCH_TOKENS + 1).fill(1), pos0: 0, logits: true }])).toThrow(/at most/);
    expect(() => model.forward([{ cache: big, terms, tokens: [], pos0: 0, logits: true }])).toThrow(/no tokens/);
    cache.dispose();
    big.dispose();
    ctx.dispose();
  });
});
