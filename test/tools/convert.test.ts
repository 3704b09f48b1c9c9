// PEFT -> GGUF conversion checked against llama.cpp: exact PEFT scaling (alpha/r, rsLoRA, patterns), refusals, round trips.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { UnsupportedAdapterError } from "../../src/errors.js";
import { peftToGguf } from "../../src/tools/peft/to-gguf.js";
import { ggufToPeft } from "../../src/tools/peft/from-gguf.js";
import { parsePeftConfig, moduleScaling } from "../../src/tools/peft/config.js";
import { openSafetensors, writeSafetensors } from "../../src/tools/safetensors.js";
import { fixture, repoRoot, scratchDir } from "../fixtures.js";
import { logProbs, logprobError, tokenLogProbs, projections, randomArray, worstError, rng, TestDelta, writeMergedF32, writePeftDir } from "./helpers.js";
import { SafetensorsDtype } from "../../src/tools/safetensors.js";

const BASE = fixture("models/stories260K.gguf");
const dir = scratchDir("lora-edge-convert-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  config: Record<string, unknown>;
  dtype?: (module: string) => SafetensorsDtype;
  /** Also adapt lm_head (-> output.weight). */
  lmHead?: boolean;
  /** Also adapt embed_tokens (lora_embedding_A/B -> token_embd, llama.cpp's flipped layout). */
  embed?: boolean;
}

/** Writes a PEFT dir with random halves for every projection; returns the deltas with PEFT's scale. */
function makePeft(c: Case, seed: number): { path: string; deltas: TestDelta[] } {
  const path = join(dir, c.name);
  const cfg = parsePeftConfig("cfg", JSON.stringify({ r: 4, lora_alpha: 8, ...c.config }));
  const r = rng(seed);
  const mods = projections(BASE);
  if (c.lmHead) mods.push({ module: "lm_head", target: "output.weight", nIn: 64, nOut: 512 });
  if (c.embed) mods.push({ module: "model.embed_tokens", target: "token_embd.weight", nIn: 64, nOut: 512 });
  const halves = mods.map((p) => {
    const { rank, scale } = moduleScaling(cfg, p.module);
    const a = randomArray(rank * p.nIn, 0.3, r);
    const b = randomArray(p.nOut * rank, 0.3, r);
    return { ...p, rank, a, b, scale, dtype: c.dtype?.(p.module) };
  });
  writePeftDir(path, { r: 4, lora_alpha: 8, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], ...c.config }, halves);
  // The reference uses the values as stored (F16/BF16 rounding included).
  using st = openSafetensors(join(path, "adapter_model.safetensors"));
  const deltas = halves.map((h) => ({
    target: h.target, nIn: h.nIn, nOut: h.nOut, rank: h.rank, scale: h.scale,
    ...(h.module.endsWith("embed_tokens") ? { a: h.a, b: h.b } : {
      a: st.readF32(`base_model.model.${h.module}.lora_A.weight`), b: st.readF32(`base_model.model.${h.module}.lora_B.weight`),
    }),
  }));
  return { path, deltas };
}

/** stories260K's attention heads: q has 8, k has 4 (GQA), each of 8 rows. */
const HEADS: Record<string, number> = { attn_q: 8, attn_k: 4 };

/**
 * A delta in Hugging Face's q/k row order put into llama.cpp's, the way its converter does it: the rows,
 * viewed as [heads, 2, d/2], have their last two axes swapped. The delta B·A moves with B's rows.
 */
function toGgufRowOrder(d: TestDelta): TestDelta {
  const heads = HEADS[/^blk\.\d+\.(attn_[qk])\.weight$/.exec(d.target)?.[1] ?? ""];
  if (!heads) return d;
  const half = d.nOut / heads / 2;
  const b = new Float32Array(d.b.length);
  for (let h = 0; h < heads; h++) {
    for (let two = 0; two < 2; two++) {
      for (let i = 0; i < half; i++) {
        const src = (h * 2 + two) * half + i; // [h, two, i] in the source view
        const dst = (h * half + i) * 2 + two; // [h, i, two] after the swap
        b.set(d.b.subarray(src * d.rank, (src + 1) * d.rank), dst * d.rank);
      }
    }
  }
  return { ...d, b };
}

async function errorsAgainstMerged(adapter: string, deltas: TestDelta[], label: string, ropeOrder = true): Promise<{ err: number; base: number }> {
  const merged = join(dir, `${label}-merged.gguf`);
  writeMergedF32(BASE, merged, ropeOrder ? deltas.map(toGgufRowOrder) : deltas);
  const want = logProbs(merged);
  return { err: await worstError(logProbs(BASE, [{ filePath: adapter, scale: 1 }]), want), base: await worstError(logProbs(BASE), want) };
}

const CASES: Case[] = [
  { name: "plain", config: {}, lmHead: true, embed: true },
  { name: "rslora", config: { use_rslora: true, lora_alpha: 6 } },
  {
    name: "patterns",
    config: {
      rank_pattern: { "model.layers.1.self_attn.q_proj": 2, down_proj: 8 },
      alpha_pattern: { k_proj: 3, "layers.4.mlp.up_proj": 20 },
    },
    dtype: (m) => (m.includes("mlp") ? "F16" : m.includes("k_proj") ? "BF16" : "F32"),
  },
  { name: "rslora-patterns", config: { use_rslora: true, rank_pattern: { "v_proj": 2, gate_proj: 8 }, alpha_pattern: { o_proj: 16 } } },
];

describe("convert PEFT -> GGUF", () => {
  for (const [i, c] of CASES.entries()) {
    it(`${c.name}: llama.cpp with the converted adapter gives the logits of W + scale·B·A`, async () => {
      const { path, deltas } = makePeft(c, 100 + i);
      const out = join(dir, `${c.name}.gguf`);
      const res = peftToGguf(path, BASE, out);
      expect(res.pairs).toBe(35 + (c.lmHead ? 1 : 0) + (c.embed ? 1 : 0));
      if (c.name === "plain") expect(res).toMatchObject({ alpha: 8, folded: [], ranks: [4] });
      if (c.name === "patterns") {
        expect(res.ranks).toEqual([2, 4, 8]);
        expect(res.folded.length).toBe(6); // 5 k_proj (alpha 3) + layers.4 up_proj (alpha 20)
      }
      const { err, base } = await errorsAgainstMerged(out, deltas, c.name);
      console.log(`convert ${c.name}: log-prob error vs merged reference ${err.toExponential(2)} (unadapted base: ${base.toExponential(2)}, alpha ${res.alpha}, folded ${res.folded.length})`);
      expect(base).toBeGreaterThan(0.05);
      expect(err).toBeLessThan(3e-3); // f16 KV cache and summation order; a wrong scale gives > 3e-2 (next test)
    }, 30_000);
  }

  it("a scale computed as plain lora_alpha / r (what a naive converter does) is caught by the same check", async () => {
    const { path, deltas } = makePeft(CASES[1], 101);
    const out = join(dir, "naive.gguf");
    peftToGguf(path, BASE, out);
    const naive = deltas.map((d) => ({ ...d, scale: 6 / d.rank }));
    const { err } = await errorsAgainstMerged(out, naive, "naive");
    console.log(`convert with a naive alpha/r scale: ${err.toExponential(2)}`);
    expect(err).toBeGreaterThan(3e-2);
  }, 30_000);

  it("a converter that keeps Hugging Face's q/k row order (ignoring llama.cpp's RoPE layout) is caught by the same check", async () => {
    const { path, deltas } = makePeft(CASES[0], 100);
    const out = join(dir, "rope-order.gguf");
    peftToGguf(path, BASE, out);
    const { err } = await errorsAgainstMerged(out, deltas, "rope-order", false);
    console.log(`convert checked against q/k deltas left in Hugging Face's row order: ${err.toExponential(2)}`);
    expect(err).toBeGreaterThan(3e-2);
  }, 30_000);

  it("GGUF -> PEFT -> GGUF is lossless (bytes, alpha, ranks), for the fixture adapter and for mixed ranks", () => {
    const src = [fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf")];
    const { path } = makePeft(CASES[2], 7);
    const mixed = join(dir, "mixed.gguf");
    peftToGguf(path, BASE, mixed);
    src.push(mixed);
    const withEmbd = join(dir, "with-embd.gguf");
    peftToGguf(makePeft(CASES[0], 8).path, BASE, withEmbd);
    src.push(withEmbd);
    for (const [i, f] of src.entries()) {
      const peftDir = join(dir, `rt-${i}`);
      const r = ggufToPeft(f, peftDir, { base: BASE });
      const cfg = JSON.parse(readFileSync(join(peftDir, "adapter_config.json"), "utf8"));
      expect(cfg).toMatchObject({ peft_type: "LORA", bias: "none", use_dora: false, r: r.r, lora_alpha: r.loraAlpha });
      const back = join(dir, `rt-${i}.gguf`);
      const res = peftToGguf(peftDir, BASE, back);
      expect(res.folded).toEqual([]);
      using a = openGguf(f);
      using b = openGguf(back);
      expect(b.get("adapter.lora.alpha")).toBe(a.get("adapter.lora.alpha"));
      expect(b.tensors.length).toBe(a.tensors.length);
      for (const t of a.tensors) {
        const u = b.tensor(t.name)!;
        expect(u.ne, t.name).toEqual(t.ne);
        expect(u.type.id, t.name).toBe(t.type.id);
        expect(Buffer.compare(Buffer.from(a.readTensor(t)), Buffer.from(b.readTensor(u))), t.name).toBe(0);
      }
    }
  });

  it("writes the rank of each module into rank_pattern and keys PEFT loads", () => {
    const peftDir = join(dir, "rt-mixed-keys");
    const r = ggufToPeft(join(dir, "mixed.gguf"), peftDir, { base: BASE });
    expect(r.r).toBe(4);
    expect(r.rankPattern["model.layers.1.self_attn.q_proj"]).toBe(2);
    expect(r.rankPattern["model.layers.0.mlp.down_proj"]).toBe(8);
    using st = openSafetensors(join(peftDir, "adapter_model.safetensors"));
    expect(st.tensor("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")!.shape).toEqual([2, 64]);
    expect(st.tensor("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")!.shape).toEqual([64, 8]);
  });
});

describe("convert a PEFT adapter written by PEFT itself", () => {
  it("llama.cpp with the converted adapter gives PyTorch's log-probabilities (rsLoRA, rank and alpha patterns, q/k row order)", async () => {
    const src = join(repoRoot, "test/fixtures/peft-stories260K-rslora");
    const want = JSON.parse(readFileSync(join(src, "pytorch-logprobs.json"), "utf8")) as { tokens: number[][]; logprobs: number[][] };
    const out = join(dir, "peft-made.gguf");
    const res = peftToGguf(src, BASE, out);
    expect(res).toMatchObject({ pairs: 35, ranks: [2, 4, 8] });
    const asMaps = want.logprobs.map((lp) => new Map(lp.map((v, t) => [t, v])));
    const errs = async (adapters: { filePath: string; scale: number }[]) => {
      const got = await tokenLogProbs(BASE, adapters, want.tokens);
      return Math.max(...got.map((g, i) => logprobError(g, asMaps[i])));
    };
    const err = await errs([{ filePath: out, scale: 1 }]);
    const unadapted = await errs([]);
    console.log(`convert PEFT-written adapter: llama.cpp vs PyTorch log-prob error ${err.toExponential(2)} (unadapted base: ${unadapted.toExponential(2)})`);
    expect(unadapted).toBeGreaterThan(0.5);
    expect(err).toBeLessThan(1e-2); // F32 on both sides, llama.cpp's f16 KV cache; q/k rows left in Hugging Face order give > 0.2
  }, 30_000);
});

describe("convert GGUF -> PEFT without the base", () => {
  it("refuses a llama adapter on attn_q/attn_k (the row order needs the head count) and writes nothing", () => {
    const out = join(dir, "no-base-peft");
    expect(() => ggufToPeft(fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf"), out)).toThrow(/base model is needed \(-m BASE\.gguf\)/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("convert refusals leave nothing behind", () => {
  const refused = (name: string, config: Record<string, unknown>, reason: RegExp, mutate?: (h: ReturnType<typeof projections>) => ReturnType<typeof projections>, halves?: "dropB") => {
    it(`${name}`, () => {
      const path = join(dir, `refuse-${name}`);
      const r = rng(1);
      let mods = projections(BASE).slice(0, 3);
      if (mutate) mods = mutate(mods);
      const hs = mods.map((p) => ({ ...p, rank: 4, a: randomArray(4 * p.nIn, 0.1, r), b: randomArray(p.nOut * 4, 0.1, r) }));
      writePeftDir(path, { r: 4, lora_alpha: 8, ...config }, hs);
      if (halves === "dropB") {
        // Rewrite the safetensors without one lora_B.
        const st = openSafetensors(join(path, "adapter_model.safetensors"));
        const keep = st.tensors.filter((t) => !t.name.includes("layers.0.self_attn.k_proj.lora_B"));
        const inputs = keep.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: st.readBytes(t) }));
        st.close();
        writeSafetensors(join(path, "adapter_model.safetensors"), inputs);
      }
      check(path, reason, name);
    });
  };
  const check = (path: string, reason: RegExp, name: string) => {
    const out = join(dir, `out-${name}.gguf`);
    expect(() => peftToGguf(path, BASE, out)).toThrow(UnsupportedAdapterError);
    expect(() => peftToGguf(path, BASE, out)).toThrow(reason);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(`out-${name}`))).toEqual([]);
  };
  refused("dora", { use_dora: true }, /use_dora.*DoRA/);
  refused("modules_to_save", { modules_to_save: ["lm_head"] }, /modules_to_save/);
  refused("bias", { bias: "all" }, /bias "all" is not supported/);
  refused("missing-half", {}, /base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_B\.weight: missing half: the file has base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight but not this one/, undefined, "dropB");
  refused("wrong-rank", { rank_pattern: { q_proj: 2 } }, /lora_A\.weight: shape \[4, 64\] .* need \[2, 64\]/);
  refused("gqa-shape", {}, /k_proj\.lora_B\.weight: shape \[64, 4\] but the base's blk\.0\.attn_k\.weight \[64, 32\]/, (m) => m.map((p) => ({ ...p, nOut: 64 })));

  it("the GPT-2 fixture: a plain 'architecture not supported'", () => {
    const out = join(dir, "gpt2.gguf");
    expect(() => peftToGguf(fixture("peft/gpt2-dialogpt-synthetic"), BASE, out)).toThrow(/architecture not supported/);
    expect(existsSync(out)).toBe(false);
  });

  it("a non-llama base is refused", () => {
    const { path } = makePeft(CASES[0], 3);
    expect(() => peftToGguf(path, fixture("tokenizer/ggml-vocab-llama-spm.gguf"), join(dir, "x.gguf"))).toThrow(UnsupportedAdapterError);
  });
});
