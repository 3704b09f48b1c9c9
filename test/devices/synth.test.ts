// Tests generated models and adapters: real shapes, valid blocks, our reader and checker accept them, llama.cpp loads them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { SHAPES, synthAdapter, synthAdapterSpec, synthModel, synthModelSpec } from "../../src/tools/synth.js";
import { Rng } from "../../src/random.js";
import { randomQ4_0 } from "../../src/tools/synth/random.js";
import { f32ToF16 } from "../../src/core/reference/half.js";
import { generateVocab } from "../../src/tools/synth/vocab.js";
import { openGguf } from "../../src/gguf/reader.js";
import { modelHparams } from "../../src/gguf/metadata.js";
import { checkAdapter } from "../../src/gguf/adapter.js";
import { cpuLlama, nextTokenLogProbs } from "../llama.js";
import { coreQuantizer } from "../../src/tools/synth/core-quantizer.js";
import { loadCore } from "../../src/core/index.js";
import { scratchDir } from "../fixtures.js";

let dir: string;
beforeAll(() => { dir = scratchDir("synth-"); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const params = (id: string) => synthModelSpec({ shape: id, type: "Q4_0" }).tensors.reduce((s, t) => s + t.ne.reduce((a, b) => a * b, 1), 0);

describe("shapes", () => {
  it("have the parameter counts of the real models", () => {
    expect(params("smollm-135m") / 1e6).toBeCloseTo(134.5, 0);
    expect(params("qwen2.5-0.5b") / 1e6).toBeCloseTo(494.0, 0);
    expect(params("llama-3.2-1b") / 1e6).toBeCloseTo(1235.8, 0);
    expect(SHAPES.map((s) => s.id)).toEqual(expect.arrayContaining(["stories15m", "smollm-135m", "qwen2.5-0.5b", "llama-3.2-1b"]));
  });

  it("adapters: A is [n_in, r], B is [r, n_out] on the chosen projections", () => {
    const a = synthAdapterSpec({ shape: "llama-3.2-1b", rank: 16, modules: ["q", "k", "down"] });
    const byName = new Map(a.tensors.map((t) => [t.name, t.ne]));
    expect(a.tensors).toHaveLength(16 * 3 * 2);
    expect(byName.get("blk.0.attn_q.weight.lora_a")).toEqual([2048, 16]);
    expect(byName.get("blk.0.attn_k.weight.lora_b")).toEqual([16, 512]);
    expect(byName.get("blk.15.ffn_down.weight.lora_a")).toEqual([8192, 16]);
    expect(() => synthAdapterSpec({ shape: "tiny", rank: 0 })).toThrow(/rank/);
    expect(() => synthAdapterSpec({ shape: "tiny", rank: 4, modules: ["qkv" as never] })).toThrow(/unknown module/);
  });
});

describe("random blocks and vocabulary", () => {
  it("f32 -> f16 rounds to nearest even and handles edge cases", () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16(NaN) & 0x7c00).toBe(0x7c00);
  });

  it("Q4_0 blocks carry the requested finite scale; seeds are deterministic", () => {
    const a = randomQ4_0(new Rng(5), 64, 0.46);
    expect(a.byteLength).toBe(36);
    expect(a[0] | (a[1] << 8)).toBe(f32ToF16(0.1));
    expect(randomQ4_0(new Rng(5), 64, 0.46)).toEqual(a);
    expect(randomQ4_0(new Rng(6), 64, 0.46)).not.toEqual(a);
  });

  it("vocabulary: unique tokens, control and byte tokens where llama.cpp expects them", () => {
    const v = generateVocab(5000);
    expect(new Set(v.tokens).size).toBe(5000);
    expect(v.tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(v.tokens[258]).toBe("<0xFF>");
    expect([...v.types.slice(0, 4)]).toEqual([2, 3, 3, 6]);
    expect(() => generateVocab(100)).toThrow(RangeError);
  });
});

describe("generated files", () => {
  it("our reader sees the shape; the adapter fits the base", () => {
    const m = synthModel(path.join(dir, "s15.gguf"), { shape: "stories15m", type: "Q8_0", vocab: 1000 });
    const a = synthAdapter(path.join(dir, "s15-lora.gguf"), { shape: "stories15m", rank: 8, modules: ["q", "v", "up"] });
    const f = openGguf(m.path);
    const g = openGguf(a.path);
    try {
      expect(modelHparams(f)).toMatchObject({ architecture: "llama", nEmbd: 288, nLayer: 6, nHead: 6, nHeadKv: 6, nFf: 768, nVocab: 1000 });
      expect(f.tensor("blk.5.ffn_down.weight")).toMatchObject({ ne: [768, 288] });
      expect(f.tensor("blk.0.attn_q.weight")!.type.name).toBe("Q8_0");
      expect(f.tensors.reduce((s, t) => s + t.byteSize, 0)).toBe(m.dataBytes);
      const c = checkAdapter(f, g);
      expect(c.problems).toEqual([]);
      expect(c.ok).toBe(true);
    } finally {
      f.close();
      g.close();
    }
  });

  it("writes the same bytes for the same seed", () => {
    const a = synthModel(path.join(dir, "a.gguf"), { shape: "tiny", type: "Q4_0", seed: 3 });
    const b = synthModel(path.join(dir, "b.gguf"), { shape: "tiny", type: "Q4_0", seed: 3 });
    const c = synthModel(path.join(dir, "c.gguf"), { shape: "tiny", type: "Q4_0", seed: 4 });
    expect(readFileSync(a.path).equals(readFileSync(b.path))).toBe(true);
    expect(readFileSync(a.path).equals(readFileSync(c.path))).toBe(false);
  });

  for (const type of ["F16", "Q8_0", "Q4_0"] as const) {
    it(`llama.cpp loads a ${type} model (Qwen2 shape with biases, 1 layer, small vocab) and generates`, async () => {
      const m = synthModel(path.join(dir, `qwen-${type}.gguf`), { shape: "qwen2.5-0.5b", type, layers: 1, vocab: 600 });
      const llama = await cpuLlama();
      const model = await llama.loadModel({ modelPath: m.path });
      try {
        expect(model.size).toBe(m.dataBytes);
        const ctx = await model.createContext({ contextSize: 64, threads: 2 });
        const tokens = model.tokenize("once upon a time");
        expect(tokens.length).toBeGreaterThan(1);
        const out: number[] = [];
        for await (const t of ctx.getSequence().evaluate(tokens, { temperature: 0 })) { out.push(t); if (out.length === 3) break; }
        expect(out).toHaveLength(3);
        for (const t of out) expect(t).toBeLessThan(600);
        await ctx.dispose();
      } finally {
        await model.dispose();
      }
    });
  }

  it("llama.cpp loads a generated adapter on all 7 projections and it changes the next-token distribution", async () => {
    const m = synthModel(path.join(dir, "tiny.gguf"), { shape: "tiny", type: "Q4_0" });
    const a = synthAdapter(path.join(dir, "tiny-lora.gguf"), { shape: "tiny", rank: 4, alpha: 32 });
    const base = await nextTokenLogProbs(m.path);
    const adapted = await nextTokenLogProbs(m.path, [{ filePath: a.path, scale: 1 }]);
    let maxDiff = 0;
    for (const [t, lp] of base) if (adapted.has(t)) maxDiff = Math.max(maxDiff, Math.abs(lp - adapted.get(t)!));
    expect(maxDiff).toBeGreaterThan(1e-3);
  });

  it("quantizes through the wasm core when given its quantizer; llama.cpp loads the result", async () => {
    const q = await coreQuantizer();
    expect(q.reason).toBeUndefined();
    const m = synthModel(path.join(dir, "tiny-core.gguf"), { shape: "tiny", type: "Q4_0", quantize: q.quantize });
    const r = synthModel(path.join(dir, "tiny-rand.gguf"), { shape: "tiny", type: "Q4_0" });
    expect(m.dataBytes).toBe(r.dataBytes);
    const f = openGguf(m.path);
    const core = await loadCore();
    try {
      const t = f.tensor("blk.0.ffn_up.weight")!;
      const x = core.dequantize(t.type.id, f.readTensor(t));
      const std = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
      expect(std / (0.5 / Math.sqrt(t.ne[0]))).toBeGreaterThan(0.85);
      expect(std / (0.5 / Math.sqrt(t.ne[0]))).toBeLessThan(1.15);
    } finally {
      f.close();
    }
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: m.path });
    expect(model.size).toBe(m.dataBytes);
    await model.dispose();
  });
});
