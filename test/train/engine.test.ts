// The f32 training engine in the wasm core against the f64 reference: loss and every A and B gradient, per base weight type, kept or recomputed activations, one or two threads.
import path from "node:path";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCore, createPool, type Core, type KernelPool } from "../../src/core/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { gradientList, seededLora, type LoraAdapter } from "../../src/train/reference/lora.js";
import { loadReferenceModel, lossAndGradients, type TrainSequence } from "../../src/train/reference/model.js";
import { freeFrozenBase, loadFrozenBase, TrainableAdapter, TrainingEngine } from "../../src/train/engine/index.js";
import { fixture, scratchDir } from "../fixtures.js";
import { normwiseError } from "./helpers.js";
import { writeQuantModel, type QuantMix } from "./quant-model.js";

const dir = scratchDir("lora-edge-train-engine-");
let core: Core;
let pool: KernelPool;
beforeAll(async () => {
  core = await loadCore();
  pool = await createPool({ threads: 2, maxBytes: 512 << 20, minParallelBytes: 0 });
});
afterAll(() => {
  pool.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Rounds the adapter's values to f32 in place, so both sides start from the same numbers. */
function roundToF32(lora: LoraAdapter): LoraAdapter {
  for (const p of lora.pairs.values()) {
    for (let i = 0; i < p.a.length; i++) p.a[i] = Math.fround(p.a[i]);
    for (let i = 0; i < p.b.length; i++) p.b[i] = Math.fround(p.b[i]);
  }
  return lora;
}

interface Comparison { loss: number; grads: number }

/** The engine's loss and gradients against the reference's, worst normwise error over the tensors. */
function compare(c: Core, file: string, lora: LoraAdapter, batch: TrainSequence[], opts: { recompute?: boolean; x8?: boolean } = {}): Comparison {
  const gguf = openGguf(file);
  const ref = lossAndGradients(loadReferenceModel(gguf), lora, batch);
  const base = loadFrozenBase(c, gguf);
  const adapter = new TrainableAdapter(c, base.config, lora);
  const engine = new TrainingEngine(c, base, adapter, { maxTokens: Math.max(...batch.map((s) => s.tokens.length)), ...opts });
  try {
    const r = engine.lossAndGradients(batch);
    expect(r.tokens).toBe(ref.tokens);
    const ours = adapter.gradients(), want = gradientList(lora, ref.grads);
    const out = { loss: Math.abs(r.loss - ref.loss) / ref.loss, grads: Math.max(...ours.map((g, i) => normwiseError(g, want[i]))) };
    return out;
  } finally {
    engine.dispose();
    adapter.dispose();
    freeFrozenBase(c, base);
  }
}

describe("training engine on stories260K (F32 base)", () => {
  const file = fixture("models/stories260K.gguf");
  const model = loadReferenceModel(openGguf(file));
  const tokens = [1, 403, 407, 261, 378, 290, 268, 305, 344, 317, 261, 392, 268, 407, 301, 46];
  const batch: TrainSequence[] = [
    { tokens },
    { tokens: tokens.slice(3, 12), lossMask: tokens.slice(4, 12).map((_, i) => i >= 3) },
  ];
  const lora = () => roundToF32(seededLora(model.config, { rank: 4, alpha: 8, seed: 7, bRange: 0.05 }));

  // f32 storage of activations against f64: measured loss 4.3e-8 relative, gradients 5.3e-6 normwise. Bounds: 1e-6 and 5e-5.
  it("loss and all 84 A and B gradients (all 7 projections): f32 against the f64 reference", () => {
    const r = compare(core, file, lora(), batch);
    expect(r.loss).toBeLessThan(1e-6);
    expect(r.grads).toBeLessThan(5e-5);
  });

  it("recomputed activations on two threads: the same figures as kept activations on one", () => {
    expect(compare(pool.core, file, lora(), batch, { recompute: true })).toEqual(compare(core, file, lora(), batch));
  });
});

// Quantized bases: the engine reads the same blocks the reference decodes, so only f32 rounding differs.
const QUANT: { arch: "llama" | "qwen2"; mix: QuantMix }[] = [
  { arch: "llama", mix: "Q4_0" },
  { arch: "llama", mix: "Q4_K" },
  { arch: "llama", mix: "Q6_K" },
  { arch: "qwen2", mix: "mixed" },
];
const tokens = [1, 300, 17, 264, 99, 310, 4, 288, 120, 7];
for (const { arch, mix } of QUANT) {
  describe(`training engine on a generated ${arch} model with ${mix} weights`, () => {
    const file = path.join(dir, `${arch}-${mix}.gguf`);
    writeQuantModel(file, arch, mix);
    const model = loadReferenceModel(openGguf(file));
    const lora = () => roundToF32(seededLora(model.config, { rank: 4, alpha: 8, seed: 3, bRange: 0.1 }));
    const batch = [{ tokens, lossMask: tokens.slice(1).map((_, i) => i >= 2) }];

    // f32 x, per type: measured loss 1.4e-8 (Q4_0), 1.7e-8 (Q4_K), 2.8e-8 (Q6_K), 1.0e-8 (mixed) relative; gradients
    // 8.6e-7, 1.2e-6, 8.8e-7, 8.5e-7 normwise. Bounds: loss 1e-6, gradients 1e-5 for every type.
    it("f32 x: loss and gradients against the f64 reference", () => {
      const r = compare(core, file, lora(), batch);
      expect(r.loss).toBeLessThan(1e-6);
      expect(r.grads).toBeLessThan(1e-5);
    });

    // 8-bit x in the forward products (as llama.cpp runs quantized weights): the forward sees rounded activations,
    // the backward the exact product. Measured loss 4e-4 to 1.2e-3, gradients 0.035 to 0.051. Bounds 5e-3 and 0.1.
    it("8-bit x in the forward products: close to the reference", () => {
      const r = compare(core, file, lora(), batch, { x8: true });
      expect(r.loss).toBeLessThan(5e-3);
      expect(r.grads).toBeLessThan(0.1);
    });
  });
}

describe("seeded start", () => {
  it("drawn straight into f32: the reference's seededLora values, rounded to f32", () => {
    const gguf = openGguf(fixture("models/stories260K.gguf"));
    const model = loadReferenceModel(gguf);
    const ref = seededLora(model.config, { rank: 4, alpha: 8, seed: 9, targets: ["q", "v", "down"] });
    const base = loadFrozenBase(core, gguf);
    const a = new TrainableAdapter(core, base.config, { seeded: true, rank: 4, alpha: 8, seed: 9, targets: ["q", "v", "down"] });
    try {
      const ours = a.parameters(), want = [...ref.pairs.values()].flatMap((p) => [p.a, p.b]);
      expect(ours.length).toBe(want.length);
      ours.forEach((x, i) => expect([...x]).toEqual([...Float32Array.from(want[i])]));
      expect(a.pairs.map((p) => p.scale)).toEqual([...ref.pairs.values()].map((p) => p.scale));
      // stories260K's output is untied: its token embedding stays in the file (rows read per batch), not in the core
      expect("fd" in base.tokenEmbd).toBe(true);
      expect(base.bytes).toBe([base.output, ...base.layers.flatMap((L) => Object.values(L.w))].reduce((n, m) => n + m.rows * m.rowBytes, 0));
    } finally {
      a.dispose();
      freeFrozenBase(core, base);
    }
  });
});
