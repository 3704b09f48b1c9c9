// The training reference on generated grouped-query models with Q4_0, Q4_K or Q6_K weights (llama, normal RoPE) and all three mixed (qwen2: neox RoPE, biases, tied output).
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { KERNELS } from "../../src/core/kernels.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { openGguf } from "../../src/gguf/reader.js";
import { seededLora } from "../../src/train/reference/lora.js";
import { loadReferenceModel } from "../../src/train/reference/model.js";
import { scratchDir } from "../fixtures.js";
import { checkModelGradients } from "./gradient-check.js";
import { writeQuantModel, type QuantMix } from "./quant-model.js";

const dir = scratchDir("lora-edge-train-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tokens = [1, 300, 17, 264, 99, 310, 4, 288];
const batch = [{ tokens, lossMask: tokens.slice(1).map((_, i) => i >= 2) }];

// The base's type changes the frozen values, not the calculus: measured 2e-10 to 3e-9 for each type (as on stories260K's
// F32). A wrong term is off by O(1). The bound per type:
const BOUND: Record<QuantMix, number> = { Q4_0: 1e-7, Q4_K: 1e-7, Q6_K: 1e-7, mixed: 1e-7 };

const CASES: { arch: "llama" | "qwen2"; mix: QuantMix }[] = [
  { arch: "llama", mix: "Q4_0" },
  { arch: "llama", mix: "Q4_K" },
  { arch: "llama", mix: "Q6_K" },
  { arch: "qwen2", mix: "mixed" },
];

for (const { arch, mix } of CASES) {
  describe(`training reference on a generated ${arch} model (8 heads over 2 KV heads; ${mix} weights)`, () => {
    const file = path.join(dir, `${arch}-${mix}.gguf`);
    const types = writeQuantModel(file, arch, mix);
    const gguf = openGguf(file);
    const model = loadReferenceModel(gguf);

    it("reads each weight as the type table decodes its blocks", () => {
      expect(new Set(types.values())).toEqual(new Set(mix === "mixed" ? [GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K] : [GgmlType[mix]]));
      expect(model.config.ropeNeox).toBe(arch === "qwen2");
      const L = model.weights.layers[1];
      for (const [name, w] of [["blk.1.attn_q.weight", L.wq], ["blk.1.attn_v.weight", L.wv], ["blk.1.ffn_up.weight", L.up]] as const) {
        const t = gguf.tensor(name)!;
        expect(t.type.id).toBe(types.get(name));
        expect([...w.w]).toEqual([...KERNELS.get(t.type.id)!.ref.dequant(gguf.readTensor(t), t.nElements)]);
      }
      expect(model.weights.output === model.weights.tokenEmbd).toBe(arch === "qwen2");
      expect(L.bq !== undefined).toBe(arch === "qwen2");
    });

    it(`rank-4 LoRA on all 7 projections: gradients equal central differences (normwise ${BOUND[mix]})`, () => {
      const lora = seededLora(model.config, { rank: 4, alpha: 8, seed: 3, bRange: 0.1 });
      // every tensor along a random direction; single entries of each projection in one layer (q, v, gate, down in 0; k, o, up in 1)
      const r = checkModelGradients(model, lora, batch, 1e-4, 2, (_, i) => (i % 7) % 2 === Math.floor(i / 7));
      expect(r.tensors).toBe(28);
      expect(r.sampled).toBe(28);
      expect(r.directional).toBeLessThanOrEqual(BOUND[mix]);
      expect(r.entries).toBeLessThanOrEqual(BOUND[mix]);
    });
  });
}
