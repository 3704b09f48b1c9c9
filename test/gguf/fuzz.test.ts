// Seeded fuzzing of the GGUF reader: 2,000+ mutated fixtures each parse or throw GgufError, quickly.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fixture } from "../fixtures.js";
import { openGguf } from "../../src/gguf/reader.js";
import { headerFields, mutate } from "../../bench/fuzz-inputs.js";
import { fuzzOne } from "../../bench/fuzz-check.js";
import { mulberry32 } from "../../src/random.js";

const SEEDS = [
  "adapters/stories260K-lora-synthetic-r4-s1.gguf",
  "models/stories260K-Q4_0.gguf",
  "quant/ggml-quant-goldens-256x32.gguf",
  "models/stories260K.gguf",
];
const PER_SEED = 1000;
const MAX_MS_PER_INPUT = 2000;

describe("gguf reader fuzz", () => {
  it(`survives ${SEEDS.length * PER_SEED} seeded mutations: every input parses or is refused with GgufError`, () => {
    using base = openGguf(fixture("models/stories260K.gguf"));
    const next = mulberry32(20261126);
    const tally = { parsed: 0, refused: 0 };
    const kinds = new Set<string>();
    let slowest = 0;
    for (const rel of SEEDS) {
      const seed = new Uint8Array(readFileSync(fixture(rel)));
      const fields = headerFields(seed);
      expect(fields.length).toBeGreaterThan(20);
      for (let i = 0; i < PER_SEED; i++) {
        const { bytes, kind } = mutate(seed, fields, next);
        kinds.add(kind);
        const t = performance.now();
        tally[fuzzOne(bytes, base)]++;
        slowest = Math.max(slowest, performance.now() - t);
      }
    }
    console.log(`fuzz: ${JSON.stringify(tally)}, slowest ${slowest.toFixed(1)} ms`);
    expect(tally.parsed + tally.refused).toBe(SEEDS.length * PER_SEED);
    // Both outcomes occur: the mutations are neither all harmless nor all fatal.
    expect(tally.refused).toBeGreaterThan(500);
    expect(tally.parsed).toBeGreaterThan(50);
    expect([...kinds].sort()).toEqual(["bitflip", "field", "splice", "truncate"]);
    expect(slowest).toBeLessThan(MAX_MS_PER_INPUT);
  });
});
