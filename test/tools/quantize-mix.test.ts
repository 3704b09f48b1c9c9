// quantize-adapter (llama.cpp loads F16/Q8_0 adapters; logit change logged) and mix (linear, cat, svd) against their definitions.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { quantizeAdapter } from "../../src/tools/quantize-adapter.js";
import { mixAdapters } from "../../src/tools/mix.js";
import { LoraAdapter, pairScale, readAdapter, writeAdapter } from "../../src/tools/lora.js";
import { truncatedSvd } from "../../src/tools/linalg.js";
import { UnsupportedAdapterError } from "../../src/errors.js";
import { fixture, scratchDir } from "../fixtures.js";
import { logProbs, randomArray, rng, worstError } from "./helpers.js";

const dir = scratchDir("lora-edge-qmix-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const F32 = fixture("models/stories260K.gguf");
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");

/** Dense ΔW = scale · B · A of one pair, f64. */
function delta(b: ArrayLike<number>, a: ArrayLike<number>, nOut: number, nIn: number, r: number, s: number): Float64Array {
  const d = new Float64Array(nOut * nIn);
  for (let o = 0; o < nOut; o++) for (let k = 0; k < r; k++) {
    const c = s * b[o * r + k];
    for (let i = 0; i < nIn; i++) d[o * nIn + i] += c * a[k * nIn + i];
  }
  return d;
}

function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < y.length; i++) { num += (x[i] - y[i]) ** 2; den += y[i] ** 2; }
  return Math.sqrt(num / den);
}

describe("quantize-adapter", () => {
  it("F16 and Q8_0 adapters load in llama.cpp; the logit change against the F32 adapter is small", async () => {
    const f32 = logProbs(F32, [{ filePath: S1, scale: 1 }]);
    for (const [type, tol] of [["f16", 3e-3], ["q8_0", 3e-2]] as const) {
      const out = join(dir, `s1-${type}.gguf`);
      const r = quantizeAdapter(S1, out, type);
      using g = openGguf(out);
      if (type === "f16") expect(r.types).toEqual({ F16: 70 });
      else {
        // lora_a of the 64-wide projections is Q8_0; rows of 172 (ffn_down) and of rank 4 (every lora_b) stay F16.
        expect(r.types).toEqual({ Q8_0: 30, F16: 40 });
        expect(g.tensor("blk.0.attn_q.weight.lora_a")!.type.name).toBe("Q8_0");
        expect(g.tensor("blk.0.attn_q.weight.lora_b")!.type.name).toBe("F16");
      }
      expect(r.bytesOut).toBeLessThan(r.bytesIn * 0.6);
      const err = await worstError(logProbs(F32, [{ filePath: out, scale: 1 }]), f32);
      console.log(`quantize-adapter ${type}: ${r.bytesIn} -> ${r.bytesOut} bytes, llama.cpp log-prob change vs the F32 adapter ${err.toExponential(2)}`);
      expect(err).toBeLessThan(tol);
    }
  }, 30_000);
});

describe("mix", () => {
  const s1 = readAdapter(S1);
  const s2 = readAdapter(S2);
  const w1 = 0.7, w2 = 0.4;

  it("cat: ΔW = Σ w_i s_i B_i A_i exactly, rank 8, alpha 8; llama.cpp equals both adapters applied at w_i", async () => {
    const out = join(dir, "cat.gguf");
    const r = await mixAdapters([{ path: S1, weight: w1 }, { path: S2, weight: w2 }], out, "cat");
    expect(r).toMatchObject({ rank: 8, alpha: 8, pairs: 35 });
    const m = readAdapter(out);
    for (const p of m.pairs) {
      const p1 = s1.pairs.find((x) => x.target === p.target)!;
      const p2 = s2.pairs.find((x) => x.target === p.target)!;
      const d2 = delta(p2.b, p2.a, p.nOut, p.nIn, 4, w2 * pairScale(s2, p2));
      const want = delta(p1.b, p1.a, p.nOut, p.nIn, 4, w1 * pairScale(s1, p1)).map((v, i) => v + d2[i]);
      expect(relErr(delta(p.b, p.a, p.nOut, p.nIn, p.rank, pairScale(m, p)), want), p.target).toBeLessThan(1e-6);
    }
    const err = await worstError(logProbs(F32, [{ filePath: out, scale: 1 }]), logProbs(F32, [{ filePath: S1, scale: w1 }, { filePath: S2, scale: w2 }]));
    console.log(`mix cat: llama.cpp log-prob error vs the two adapters at run time ${err.toExponential(2)}`);
    expect(err).toBeLessThan(3e-3);
  }, 30_000);

  it("linear: A = Σ √(w_i s_i) A_i, B = Σ √(w_i s_i) B_i (PEFT's definition, cross terms included)", async () => {
    const out = join(dir, "linear.gguf");
    const r = await mixAdapters([{ path: S1, weight: w1 }, { path: S2, weight: w2 }], out, "linear");
    expect(r).toMatchObject({ rank: 4, alpha: 4 });
    const m = readAdapter(out);
    for (const p of m.pairs) {
      const p1 = s1.pairs.find((x) => x.target === p.target)!;
      const p2 = s2.pairs.find((x) => x.target === p.target)!;
      const c1 = Math.sqrt(w1 * pairScale(s1, p1)), c2 = Math.sqrt(w2 * pairScale(s2, p2));
      expect(relErr(p.a, p1.a.map((v, i) => c1 * v + c2 * p2.a[i]))).toBeLessThan(1e-6);
      expect(relErr(p.b, p1.b.map((v, i) => c1 * v + c2 * p2.b[i]))).toBeLessThan(1e-6);
    }
    await expect(mixAdapters([{ path: S1, weight: -1 }, { path: S2, weight: 1 }], join(dir, "neg.gguf"), "linear")).rejects.toThrow(UnsupportedAdapterError);
  });

  it("svd: rank ≥ the sum of ranks reproduces Σ w_i s_i B_i A_i; a lower rank is the best approximation (matches a dense SVD)", async () => {
    const full = join(dir, "svd8.gguf");
    await mixAdapters([{ path: S1, weight: w1 }, { path: S2, weight: w2 }], full, "svd", 8);
    const low = join(dir, "svd3.gguf");
    const r = await mixAdapters([{ path: S1, weight: w1 }, { path: S2, weight: w2 }], low, "svd", 3);
    expect(r).toMatchObject({ rank: 3, alpha: 3 });
    const m8 = readAdapter(full);
    const m3 = readAdapter(low);
    for (const p of m8.pairs) {
      const p1 = s1.pairs.find((x) => x.target === p.target)!;
      const p2 = s2.pairs.find((x) => x.target === p.target)!;
      const d1 = delta(p1.b, p1.a, p.nOut, p.nIn, 4, w1 * pairScale(s1, p1));
      const d2 = delta(p2.b, p2.a, p.nOut, p.nIn, 4, w2 * pairScale(s2, p2));
      const want = d1.map((v, i) => v + d2[i]);
      expect(relErr(delta(p.b, p.a, p.nOut, p.nIn, 8, pairScale(m8, p)), want), p.target).toBeLessThan(1e-5);
      const q = m3.pairs.find((x) => x.target === p.target)!;
      const dense = truncatedSvd(want, p.nOut, p.nIn, 3);
      const got = delta(q.b, q.a, p.nOut, p.nIn, 3, pairScale(m3, q));
      expect(relErr(got, delta(dense.b, dense.a, p.nOut, p.nIn, 3, 1)), p.target).toBeLessThan(1e-4);
      // Eckart-Young: the error is the tail of the singular values.
      const tail = Math.sqrt(dense.sigma.slice(3).reduce((s, x) => s + x * x, 0) / dense.sigma.reduce((s, x) => s + x * x, 0));
      expect(relErr(got, want)).toBeCloseTo(tail, 4);
    }
  });

  it("cat pads modules missing from one adapter with zeros, as PEFT does", async () => {
    const r = rng(5);
    const p0 = s1.pairs[0];
    const part: LoraAdapter = { architecture: "llama", alpha: 2, extraKv: [], pairs: [{ ...p0, rank: 2, a: randomArray(2 * p0.nIn, 0.2, r), b: randomArray(p0.nOut * 2, 0.2, r) }] };
    const path = join(dir, "one-module.gguf");
    writeAdapter(path, part);
    const out = join(dir, "cat-missing.gguf");
    const res = await mixAdapters([{ path: S1, weight: 1 }, { path, weight: 1 }], out, "cat");
    expect(res.rank).toBe(6);
    const m = readAdapter(out);
    const other = m.pairs.find((x) => x.target === s1.pairs[5].target)!;
    expect(other.rank).toBe(6);
    for (let o = 0; o < other.nOut; o++) expect([other.b[o * 6 + 4], other.b[o * 6 + 5]]).toEqual([0, 0]);
  });
});
