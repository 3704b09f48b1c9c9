// Runtime logits against llama.cpp's reference file; live swap equals a fresh context; scale 0 equals the base.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseReferenceLogits } from "../llama.js";
import type { Runtime } from "../../src/runtime/index.js";
import { MODEL_Q4, MODEL_Q8, REFERENCE, S1, S2, logitError, openCpu, sameArray, topK } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

const PROMPT = "Once upon a time";
const ref = parseReferenceLogits(readFileSync(REFERENCE, "utf8"));

function expectMatches(lp: Float64Array, section: string) {
  const r = ref.get(section);
  expect(r, section).toBeDefined();
  expect(topK(lp, 5)).toEqual(r!.map((x) => x.token));
  expect(logitError(lp, r!)).toBeLessThanOrEqual(1e-3);
}

for (const swap of ["live", "recreate"] as const) {
  describe(`stories260K F32 with s1/s2 (${swap} swaps)`, () => {
    let rt: Runtime;
    beforeAll(async () => {
      rt = await openCpu({ swap });
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
    });
    afterAll(async () => rt?.dispose());

    it("matches the reference logits for the base and each adapter", async () => {
      const s = rt.session();
      expectMatches(await s.nextLogProbs(PROMPT), "base F32");
      await s.setAdapters({ s1: 1 });
      expectMatches(await s.nextLogProbs(PROMPT), "base F32 + s1 @1.0");
      await s.setAdapters({ s2: 1 });
      expectMatches(await s.nextLogProbs(PROMPT), "base F32 + s2 @1.0");
      expect(s.swaps[swap === "live" ? "live" : "recreated"]).toBe(2);
      await s.dispose();
    });

    it("a swapped-in set gives exactly the logits of a fresh session created with it", async () => {
      const live = rt.session({ adapters: { s1: 1 } });
      await live.nextLogProbs(PROMPT);
      const sets: Record<string, number>[] = [{ s2: 1 }, { s1: 0.5, s2: 0.75 }, {}, { s1: -1 }, { s1: 1 }];
      for (const set of sets) {
        await live.setAdapters(set);
        const swapped = await live.nextLogProbs(PROMPT);
        const fresh = rt.session({ adapters: set });
        const expected = await fresh.nextLogProbs(PROMPT);
        await fresh.dispose();
        expect(sameArray(swapped, expected), JSON.stringify(set)).toBe(true);
      }
      await live.dispose();
    });

    it("scale 0 and no adapter give exactly the base; a mix differs from both parts", async () => {
      const s = rt.session();
      const base = await s.nextLogProbs(PROMPT);
      await s.setAdapters({ s1: 0 });
      expect(sameArray(await s.nextLogProbs(PROMPT), base)).toBe(true);
      await s.setAdapters({ s1: 0, s2: 0 });
      expect(sameArray(await s.nextLogProbs(PROMPT), base)).toBe(true);
      await s.setAdapters({ s1: 1 });
      const a = await s.nextLogProbs(PROMPT);
      await s.setAdapters({ s2: 1 });
      const b = await s.nextLogProbs(PROMPT);
      await s.setAdapters({ s1: 1, s2: 1 });
      const mix = await s.nextLogProbs(PROMPT);
      for (const other of [base, a, b]) expect(sameArray(mix, other)).toBe(false);
      // the mix is not just one of its parts: its top token distribution moves away from each
      expect(Math.abs(mix[378] - a[378])).toBeGreaterThan(1e-3);
      expect(Math.abs(mix[383] - b[383])).toBeGreaterThan(1e-3);
      await s.dispose();
    });
  });
}

describe("quantized bases", () => {
  for (const [file, section] of [
    [MODEL_Q4, "Q4_0"],
    [MODEL_Q8, "Q8_0"],
  ] as const) {
    it(`${section} matches the reference and accepts the adapters`, async () => {
      const rt = await openCpu({ model: file });
      try {
        const s = rt.session();
        expectMatches(await s.nextLogProbs(PROMPT), section);
        await rt.adapters.load("s1", S1);
        await rt.adapters.load("s2", S2);
        await s.setAdapters({ s1: 1 });
        const withA = await s.nextLogProbs(PROMPT);
        expect(topK(withA, 1)).not.toEqual(topK(await rt.session().nextLogProbs(PROMPT), 1));
        // live swaps on the quantized base equal fresh contexts exactly too
        for (const set of [{ s2: 1 }, { s1: 0.5, s2: 0.5 }, {}] as Record<string, number>[]) {
          await s.setAdapters(set);
          const swapped = await s.nextLogProbs(PROMPT);
          const fresh = await rt.session({ adapters: set }).nextLogProbs(PROMPT);
          expect(sameArray(swapped, fresh), JSON.stringify(set)).toBe(true);
        }
      } finally {
        await rt.dispose();
      }
    });
  }
});
