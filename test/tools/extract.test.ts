// extract: tuned - base recovered as a LoRA adapter by truncated SVD; exact at the true rank, optimal below it, llama.cpp agrees.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { extractAdapter } from "../../src/tools/extract.js";
import { readAdapter } from "../../src/tools/lora.js";
import { truncatedSvd } from "../../src/tools/linalg.js";
import { UnsupportedAdapterError } from "../../src/errors.js";
import { fixture, scratchDir } from "../fixtures.js";
import { logProbs, projections, randomArray, rng, TestDelta, worstError, writeMergedF32 } from "./helpers.js";

const dir = scratchDir("lora-edge-extract-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const F32 = fixture("models/stories260K.gguf");

describe("extract", () => {
  const r = rng(42);
  const mods = projections(F32).filter((_, i) => i % 2 === 0);
  const deltas: TestDelta[] = mods.map((m) => ({ ...m, rank: 3, scale: 1, a: randomArray(3 * m.nIn, 0.3, r), b: randomArray(m.nOut * 3, 0.3, r) }));
  const tuned = join(dir, "tuned.gguf");
  writeMergedF32(F32, tuned, deltas);

  it("at the true rank the adapter reproduces the tuned model (weights and llama.cpp logits)", async () => {
    const out = join(dir, "r3.gguf");
    const res = await extractAdapter(F32, tuned, 3, out);
    console.log(`extract rank 3 of a rank-3 change: relative error ${res.relError.toExponential(2)} (of tuned ${res.relErrorOfTuned.toExponential(2)}), ${res.pairs} pairs, ${res.seconds.toFixed(2)} s`);
    expect(res.pairs).toBe(deltas.length);
    expect(res.uncaptured).toEqual([]);
    expect(res.relError).toBeLessThan(1e-5);
    expect(readAdapter(out).alpha).toBe(3);
    const err = await worstError(logProbs(F32, [{ filePath: out, scale: 1 }]), logProbs(tuned));
    console.log(`extract: llama.cpp log-prob error base + adapter vs tuned ${err.toExponential(2)}`);
    expect(err).toBeLessThan(3e-3);
  }, 30_000);

  it("below the true rank the error is the singular-value tail (Eckart-Young)", async () => {
    const res = await extractAdapter(F32, tuned, 1, join(dir, "r1.gguf"));
    console.log(`extract rank 1 of a rank-3 change: relative error ${res.relError.toExponential(3)}`);
    for (const t of res.tensors.slice(0, 6)) {
      const d = deltas.find((x) => x.target === t.target)!;
      const dense = new Float64Array(d.nOut * d.nIn);
      for (let o = 0; o < d.nOut; o++) for (let k = 0; k < 3; k++) for (let i = 0; i < d.nIn; i++) dense[o * d.nIn + i] += d.b[o * 3 + k] * d.a[k * d.nIn + i];
      const s = truncatedSvd(dense, d.nOut, d.nIn, 3).sigma;
      const tail = Math.sqrt((s[1] ** 2 + s[2] ** 2) / (s[0] ** 2 + s[1] ** 2 + s[2] ** 2));
      expect(t.relError).toBeCloseTo(tail, 3);
    }
    expect(res.relError).toBeGreaterThan(0.1);
  });

  it("reports changed vectors it cannot carry, and refuses models with different tensor tables", async () => {
    const changedNorm = join(dir, "tuned-norm.gguf");
    writeMergedF32(F32, changedNorm, [...deltas.slice(0, 1), { target: "blk.0.attn_norm.weight", nIn: 64, nOut: 1, rank: 1, scale: 1, a: new Float32Array(64).fill(0.01), b: new Float32Array([1]) }]);
    const res = await extractAdapter(F32, changedNorm, 3, join(dir, "n.gguf"));
    expect(res.uncaptured).toEqual(["blk.0.attn_norm.weight"]);
    await expect(extractAdapter(F32, fixture("models/llama-2-tiny-random.gguf"), 2, join(dir, "x.gguf"))).rejects.toBeInstanceOf(UnsupportedAdapterError);
  });
});
