// Unmerged LoRA adapters in the wasm engine: s1, s2 and their mix against llama.cpp (exact f32 and compact int8 halves), live swap, rescale and unload.
import { describe, expect, test } from "vitest";
import { EngineContext, EngineModel, type AdapterPrecision } from "../../src/backends/wasm/engine/index.js";
import { UnsupportedAdapterError } from "../../src/errors.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";
import { compareLogits, engineFor, llamaReference, sharedCore } from "./helpers.js";

const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
const TOKENS = [1, 403, 407, 261, 378];

function adapters(model: EngineModel, precision?: AdapterPrecision) {
  const f1 = openGguf(S1), f2 = openGguf(S2);
  try {
    return { s1: model.loadAdapter(f1, { precision }), s2: model.loadAdapter(f2, { precision }) };
  } finally {
    f1.close();
    f2.close();
  }
}

const SETS = [
  ["s1", [["s1", 1]]],
  ["s2", [["s2", 1]]],
  ["s1 at 0.5", [["s1", 0.5]]],
  ["mix 0.7 s1 + 0.3 s2", [["s1", 0.7], ["s2", 0.3]]],
] as const;

describe.each([
  ["F32", "stories260K.gguf", 1e-4],
  ["Q8_0", "stories260K-Q8_0.gguf", 1e-2],
  ["Q4_0", "stories260K-Q4_0.gguf", 1e-2],
])("%s base", (_label, file, tol) => {
  const path = fixture("models/" + file);
  test.each(SETS)("%s matches llama.cpp (f32 halves)", async (_name, set) => {
    const model = await engineFor(path);
    const a = adapters(model, "f32");
    const files = { s1: S1, s2: S2 };
    const ctx = new EngineContext(model, 64, set.map(([n, scale]) => ({ adapter: a[n], scale })));
    const logits = ctx.evaluate(TOKENS);
    // llama.cpp one token per batch, the order the engine evaluates a prompt in
    const ref = await llamaReference(path, TOKENS, { batchSize: 1, adapters: set.map(([n, scale]) => ({ filePath: files[n], scale })) });
    expect(compareLogits(logits, ref.logProbs).normwise).toBeLessThanOrEqual(tol);
    ctx.dispose();
  });
});

/**
 * The compact halves (A as Q8_0 on 8-bit x, t in 7 bits, B as int8 rows) on quantized bases. The f32 path
 * repeats llama.cpp's arithmetic (about 1e-7 here), so any change to the adapter's numbers shows up through
 * the 8-bit rounding of activations, which turns tiny differences into steps: scaling A by 1 + 1e-5 noise
 * already moves these logits by 1.1e-2 to 1.5e-2. Measured, 8-bit activations: 1.3e-2 to 2.8e-2 against
 * llama.cpp; f32 activations (a smooth function of the adapter): 3.4e-3 to 6.7e-3 from the f32 path.
 */
describe.each([
  ["Q8_0", "stories260K-Q8_0.gguf"],
  ["Q4_0", "stories260K-Q4_0.gguf"],
])("%s base, compact adapter halves", (_label, file) => {
  const path = fixture("models/" + file);
  test.each(SETS)("%s stays within 4e-2 of llama.cpp and of the f32 halves (1e-2 with f32 activations)", async (_name, set) => {
    // the plain Q4_0 layout, so that the f32-activation check below can run (grouped rows read 8-bit x only)
    const model = await engineFor(path, { repackQ4_0: false });
    const q = adapters(model, "q8"), f = adapters(model, "f32");
    const run = (a: typeof q) => {
      const ctx = new EngineContext(model, 64, set.map(([n, scale]) => ({ adapter: a[n], scale })));
      const l = ctx.evaluate(TOKENS);
      ctx.dispose();
      return l;
    };
    const asRef = (l: Float32Array) => new Map([...l].map((v, i) => [i, v]));
    const files = { s1: S1, s2: S2 };
    const ref = await llamaReference(path, TOKENS, { batchSize: 1, adapters: set.map(([n, scale]) => ({ filePath: files[n], scale })) });
    const lq = run(q), lf = run(f);
    expect(compareLogits(lq, ref.logProbs).normwise).toBeLessThanOrEqual(4e-2);
    expect(compareLogits(lq, asRef(lf)).normwise).toBeLessThanOrEqual(4e-2);
    model.activationsX8 = false;
    try {
      expect(compareLogits(run(q), asRef(run(f))).normwise).toBeLessThanOrEqual(1e-2);
    } finally {
      model.activationsX8 = true;
    }
    // the adapters move the logits far more than the bounds above, so the checks can fail
    const base = new EngineContext(model, 64).evaluate(TOKENS);
    expect(compareLogits(base, asRef(lf)).normwise).toBeGreaterThan(0.1);
  });

  test("q8 keeps compact halves where the columns allow (not the F16 ffn_down of 172 columns); f32 is the default", async () => {
    const model = await engineFor(path);
    const { s1 } = adapters(model, "q8");
    for (const [name, pair] of s1.pairs) {
      const w = model.weights.byName.get(name)!;
      expect(pair.q8 !== undefined, `${name} on ${w.type.name}`).toBe(w.cols % 32 === 0);
      // a pair keeps one form: the compact halves replace the f32 ones
      if (pair.q8) expect(pair.a).toBeUndefined();
      else expect(pair.a.type.name).toBe("F32");
    }
    expect([...s1.pairs.values()].some((p) => p.q8)).toBe(true);
    expect([...s1.pairs.values()].some((p) => !p.q8)).toBe(true);
    const { s1: byDefault } = adapters(model);
    expect([...byDefault.pairs.values()].some((p) => p.q8)).toBe(false);
    // the adapter's size counts only the form it keeps (rank 4 pads B rows to 16 bytes, so q8 saves little here)
    const kept = [...s1.pairs.values()].reduce((n, p) => n + (p.q8 ? p.q8.bytes : (p.a.rows * p.a.cols + p.b.rows * p.b.cols) * 4), 0);
    expect(s1.bytes).toBe(kept);
    expect(s1.bytes).toBeLessThan(byDefault.bytes);
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
      expect(() => tiny.loadAdapter(a)).toThrow(UnsupportedAdapterError);
      expect(() => tiny.loadAdapter(a)).toThrow(/blk\.\d\.\w+\.weight/);
    } finally {
      a.close();
    }
  });
});
