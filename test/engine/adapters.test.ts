// Unmerged LoRA adapters in the wasm engine: s1, s2 and their mix against llama.cpp, live swap, rescale and unload.
import { describe, expect, test } from "vitest";
import { EngineConfigError, EngineContext, EngineModel } from "../../src/backends/wasm/engine/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";
import { compareLogits, engineFor, llamaReference, sharedCore } from "./helpers.js";

const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
const TOKENS = [1, 403, 407, 261, 378];

function adapters(model: EngineModel) {
  const f1 = openGguf(S1), f2 = openGguf(S2);
  try {
    return { s1: model.loadAdapter(f1), s2: model.loadAdapter(f2) };
  } finally {
    f1.close();
    f2.close();
  }
}

describe.each([
  ["F32", "stories260K.gguf", 1e-4],
  ["Q8_0", "stories260K-Q8_0.gguf", 1e-2],
  ["Q4_0", "stories260K-Q4_0.gguf", 1e-2],
])("%s base", (_label, file, tol) => {
  const path = fixture("models/" + file);
  test.each([
    ["s1", [["s1", 1]]],
    ["s2", [["s2", 1]]],
    ["s1 at 0.5", [["s1", 0.5]]],
    ["mix 0.7 s1 + 0.3 s2", [["s1", 0.7], ["s2", 0.3]]],
  ] as const)("%s matches llama.cpp", async (_name, set) => {
    const model = await engineFor(path);
    const a = adapters(model);
    const files = { s1: S1, s2: S2 };
    const ctx = new EngineContext(model, 64, set.map(([n, scale]) => ({ adapter: a[n], scale })));
    const logits = ctx.evaluate(TOKENS);
    // llama.cpp one token per batch, the order the engine evaluates a prompt in
    const ref = await llamaReference(path, TOKENS, { batchSize: 1, adapters: set.map(([n, scale]) => ({ filePath: files[n], scale })) });
    expect(compareLogits(logits, ref.logProbs).normwise).toBeLessThanOrEqual(tol);
    ctx.dispose();
  });
});

describe("live adapter changes on one model", () => {
  test("swap, rescale, mix and unload give exactly what a fresh context gives", async () => {
    const model = await engineFor(fixture("models/stories260K-Q4_0.gguf"));
    const { s1, s2 } = adapters(model);
    const fresh = (set: { adapter: typeof s1; scale: number }[]) => {
      const c = new EngineContext(model, 32, set);
      const l = c.evaluate(TOKENS);
      c.dispose();
      return l;
    };
    const base = fresh([]);
    const withS1 = fresh([{ adapter: s1, scale: 1 }]);
    const withS2 = fresh([{ adapter: s2, scale: 1 }]);
    const mix = fresh([{ adapter: s1, scale: 0.7 }, { adapter: s2, scale: 0.3 }]);
    expect(compareLogits(withS1, new Map([...base].map((v, i) => [i, v]))).normwise).toBeGreaterThan(1e-2);

    const live = new EngineContext(model, 32, [{ adapter: s1, scale: 1 }]);
    expect(live.evaluate(TOKENS)).toEqual(withS1);
    live.setAdapters([{ adapter: s2, scale: 1 }]);
    live.clear();
    expect(live.evaluate(TOKENS)).toEqual(withS2);
    live.setAdapters([{ adapter: s1, scale: 0.7 }, { adapter: s2, scale: 0.3 }]);
    live.clear();
    expect(live.evaluate(TOKENS)).toEqual(mix);
    // rescale to 0 is the base model
    live.setAdapters([{ adapter: s1, scale: 0 }]);
    live.clear();
    expect(live.evaluate(TOKENS)).toEqual(base);
    // unload: detached, freed, then refused
    live.setAdapters([{ adapter: s2, scale: 1 }]);
    expect(live.uses(s1)).toBe(false);
    s1.free();
    expect(s1.freed).toBe(true);
    expect(() => live.setAdapters([{ adapter: s1, scale: 1 }])).toThrow(/freed/);
    live.clear();
    expect(live.evaluate(TOKENS)).toEqual(withS2);
    live.setAdapters([]);
    live.clear();
    expect(live.evaluate(TOKENS)).toEqual(base);
    live.dispose();
  });

  test("an adapter for another model is refused, naming the tensor", async () => {
    const core = await sharedCore();
    const f = openGguf(fixture("models/llama-2-tiny-random.gguf"));
    const tiny = new EngineModel(core, f);
    f.close();
    const a = openGguf(S1);
    try {
      expect(() => tiny.loadAdapter(a)).toThrow(EngineConfigError);
      expect(() => tiny.loadAdapter(a)).toThrow(/blk\.\d\.\w+\.weight/);
    } finally {
      a.close();
    }
  });
});
