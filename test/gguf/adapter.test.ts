// checkAdapter: the fixture adapters fit all three stories260K bases and are refused, with reasons, elsewhere.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { fixture, scratchDir } from "../fixtures.js";
import { openGguf } from "../../src/gguf/reader.js";
import { checkAdapter } from "../../src/gguf/adapter.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";

const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
const dir = scratchDir();

/** Rewrites the s1 adapter with its tensors and metadata passed through `edit`. */
function variant(name: string, edit: { kv?: (kv: ReturnType<typeof kvInputsFrom>) => ReturnType<typeof kvInputsFrom>; tensors?: (t: ReturnType<typeof tensorInputsFrom>) => ReturnType<typeof tensorInputsFrom> }): string {
  using g = openGguf(S1);
  const out = join(dir, name);
  const kv = kvInputsFrom(g);
  const tensors = tensorInputsFrom(g).map((t) => ({ ...t, data: g.readTensor(t.name) }));
  writeGguf(out, { kv: edit.kv ? edit.kv(kv) : kv, tensors: edit.tensors ? edit.tensors(tensors) : tensors });
  return out;
}

describe("checkAdapter", () => {
  it("accepts s1 and s2 on the F32, Q4_0 and Q8_0 bases with a full summary", () => {
    for (const base of ["stories260K", "stories260K-Q4_0", "stories260K-Q8_0"]) {
      for (const a of [S1, S2]) {
        using b = openGguf(fixture(`models/${base}.gguf`));
        using ad = openGguf(a);
        const r = checkAdapter(b, ad);
        expect(r.problems).toEqual([]);
        expect(r.ok).toBe(true);
        expect(r.summary).toMatchObject({
          alpha: 8, ranks: [4], pairs: 35, layers: [0, 1, 2, 3, 4],
          targets: ["attn_k", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_up"],
        });
      }
    }
  });

  it("refuses them on llama-2-tiny-random, naming the first mismatching tensor and both shapes", () => {
    using b = openGguf(fixture("models/llama-2-tiny-random.gguf"));
    using ad = openGguf(S1);
    const r = checkAdapter(b, ad);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ tensor: "blk.0.attn_q.weight.lora_a", expected: "[8, 4]", actual: "[64, 4]" });
    expect(r.problems[0].message).toContain("blk.0.attn_q.weight");
    // Layers 1..4 do not exist in a one-layer model.
    expect(r.problems.some((p) => p.tensor === "blk.1.attn_q.weight" && /no tensor/.test(p.message))).toBe(true);
  });

  it("reports a missing half, an unexpected suffix, a wrong rank and wrong metadata", () => {
    const missing = variant("missing.gguf", { tensors: (t) => t.filter((x) => x.name !== "blk.3.ffn_up.weight.lora_b") });
    const suffix = variant("suffix.gguf", { tensors: (t) => t.map((x) => x.name === "blk.0.attn_k.weight.lora_a" ? { ...x, name: "blk.0.attn_k.weight.lora_x" } : x) });
    const rank = variant("rank.gguf", {
      tensors: (t) => t.map((x) => x.name === "blk.2.attn_v.weight.lora_b" ? { ...x, ne: [2, 32], data: new Uint8Array(2 * 32 * 4) } : x),
    });
    const meta = variant("meta.gguf", { kv: (kv) => kv.map((e) => e.key === "general.architecture" ? { ...e, value: "qwen2" } : e.key === "adapter.type" ? { ...e, value: "ia3" } : e) });
    using base = openGguf(fixture("models/stories260K.gguf"));
    const check = (p: string) => { using a = openGguf(p); return checkAdapter(base, a); };
    expect(check(missing).problems).toEqual([expect.objectContaining({ tensor: "blk.3.ffn_up.weight.lora_b", actual: "missing" })]);
    const sfx = check(suffix).problems.map((p) => p.tensor);
    expect(sfx).toContain("blk.0.attn_k.weight.lora_x");
    expect(sfx).toContain("blk.0.attn_k.weight.lora_a");
    expect(check(rank).problems).toEqual([expect.objectContaining({ tensor: "blk.2.attn_v.weight.lora_a", expected: "[64, 2]", actual: "[64, 4]" })]);
    expect(check(meta).problems.map((p) => p.tensor)).toEqual(["adapter.type", "general.architecture"]);
  });

  it("refuses a model given as an adapter", () => {
    using base = openGguf(fixture("models/stories260K.gguf"));
    using notAdapter = openGguf(fixture("models/stories260K-Q8_0.gguf"));
    const r = checkAdapter(base, notAdapter);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ tensor: "general.type", expected: "adapter" });
  });

  it("accepts an adapter without alpha (llama.cpp then uses the user scale)", () => {
    const noAlpha = variant("noalpha.gguf", { kv: (kv) => kv.filter((e) => e.key !== "adapter.lora.alpha") });
    using base = openGguf(fixture("models/stories260K.gguf"));
    using a = openGguf(noAlpha);
    const r = checkAdapter(base, a);
    expect(r.ok).toBe(true);
    expect(r.summary.alpha).toBeUndefined();
  });
});
