// Engine with Q4_0 weights in groups of four rows: the same logits, bit for bit, as the plain layout, with adapters and on threads.
import path from "node:path";
import { describe, expect, test } from "vitest";
import { createPool } from "../../src/core/index.js";
import { loadEngineModel } from "../../src/backends/wasm.js";
import { EngineContext, type EngineModel } from "../../src/backends/wasm/engine/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { synthAdapter, synthModel, type ModelShape } from "../../src/tools/synth.js";
import { fixture, scratchDir } from "../fixtures.js";
import { sharedCore } from "./helpers.js";

/** Columns that are multiples of 128 (the kernel's four-block steps) and a vocabulary that leaves two rows after the last group. */
const SHAPE: ModelShape = {
  id: "repack-test", title: "grouped Q4_0 test", architecture: "llama", nEmbd: 128, nLayer: 2, nHead: 4, nHeadKv: 2,
  nFf: 384, nVocab: 290, contextLength: 64, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false,
};

function logits(model: EngineModel, tokens: number[], adapterPath?: string): Float32Array {
  let active: { adapter: ReturnType<EngineModel["loadAdapter"]>; scale: number }[] = [];
  if (adapterPath) {
    const f = openGguf(adapterPath);
    active = [{ adapter: model.loadAdapter(f), scale: 0.9 }];
    f.close();
  }
  const ctx = new EngineContext(model, 32, active);
  try {
    return ctx.evaluate(tokens);
  } finally {
    ctx.dispose();
  }
}

describe("Q4_0 weights grouped by four rows in the engine", () => {
  test("stories260K Q4_0 (64 columns: the kernel's block remainder path) gives the plain layout's logits", async () => {
    const core = await sharedCore();
    const file = fixture("models/stories260K-Q4_0.gguf");
    const grouped = loadEngineModel(core, file), plain = loadEngineModel(core, file, undefined, { repackQ4_0: false });
    expect(grouped.weights.layers[0].wq.layout).toBe("q4_0x4");
    expect(plain.weights.layers[0].wq.layout).toBeUndefined();
    const adapter = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
    const tokens = [1, 403, 407, 261, 378];
    expect(logits(grouped, tokens)).toEqual(logits(plain, tokens));
    expect(logits(grouped, tokens, adapter)).toEqual(logits(plain, tokens, adapter));
  });

  test("a generated model with 128-multiple columns, on one thread and on a pool, gives the plain layout's logits", async () => {
    const dir = scratchDir();
    const file = path.join(dir, "q4-groups.gguf"), adapter = path.join(dir, "q4-groups-r4.gguf");
    synthModel(file, { shape: SHAPE, type: "Q4_0", seed: 3 });
    synthAdapter(adapter, { shape: SHAPE, rank: 4, seed: 4 });
    const tokens = [1, 17, 200, 42, 9];
    const plain = loadEngineModel(await sharedCore(), file, undefined, { repackQ4_0: false });
    const want = logits(plain, tokens), wantLora = logits(plain, tokens, adapter);
    expect(logits(loadEngineModel(await sharedCore(), file), tokens)).toEqual(want);
    const pool = await createPool({ threads: 2, minParallelBytes: 1 });
    try {
      const par = loadEngineModel(pool.core, file);
      expect(par.weights.layers[1].down.layout).toBe("q4_0x4");
      expect(logits(par, tokens)).toEqual(want);
      expect(logits(par, tokens, adapter)).toEqual(wantLora);
    } finally {
      pool.dispose();
    }
  });
});
