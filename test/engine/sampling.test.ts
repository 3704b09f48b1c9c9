// Sampling in the wasm engine: greedy, temperature, top-k, top-p and seeded reproducibility.
import { describe, expect, test } from "vitest";
import { argmax, sampleToken } from "../../src/backends/wasm/engine/index.js";
import { Rng } from "../../src/random.js";

const counts = (logits: number[], p: { temperature: number; topK: number; topP: number }, n = 20000, seed = 7) => {
  const rng = new Rng(seed);
  const c = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampleToken(logits, { ...p, seed }, rng)]++;
  return c.map((x) => x / n);
};

describe("sampleToken", () => {
  const logits = [Math.log(0.1), Math.log(0.6), Math.log(0.25), Math.log(0.05)];

  test("temperature 0 is greedy", () => {
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1, seed: 1 }, new Rng(1))).toBe(1);
    expect(argmax([3, 5, 5, 1])).toBe(1);
  });

  test("temperature 1 draws from the softmax", () => {
    const f = counts(logits, { temperature: 1, topK: 0, topP: 1 });
    [0.1, 0.6, 0.25, 0.05].forEach((p, i) => expect(Math.abs(f[i] - p)).toBeLessThan(0.015));
  });

  test("temperature 2 flattens: p ~ sqrt(p0)", () => {
    const f = counts(logits, { temperature: 2, topK: 0, topP: 1 });
    const w = [0.1, 0.6, 0.25, 0.05].map(Math.sqrt);
    const z = w.reduce((a, b) => a + b);
    w.forEach((x, i) => expect(Math.abs(f[i] - x / z)).toBeLessThan(0.015));
  });

  test("top-k keeps the k best", () => {
    const f = counts(logits, { temperature: 1, topK: 2, topP: 1 });
    expect(f[0]).toBe(0);
    expect(f[3]).toBe(0);
    expect(Math.abs(f[1] - 0.6 / 0.85)).toBeLessThan(0.015);
    expect(counts(logits, { temperature: 5, topK: 1, topP: 1 }, 100)[1]).toBe(1);
  });

  test("top-p keeps the smallest set reaching p", () => {
    expect(counts(logits, { temperature: 1, topK: 0, topP: 0.5 }, 200)[1]).toBe(1);
    const f = counts(logits, { temperature: 1, topK: 0, topP: 0.8 });
    expect(f[0] + f[3]).toBe(0);
    expect(Math.abs(f[2] - 0.25 / 0.85)).toBeLessThan(0.015);
  });

  test("a seed reproduces its draws; another seed differs", () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 1.5, topK: 0, topP: 1, seed }, rng));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });
});
