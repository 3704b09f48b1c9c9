// The seeded generators: fixed outputs for fixed seeds (generated models, sampling, fuzz inputs and the demo adapters depend on them).
import { describe, expect, it } from "vitest";
import { Rng, mulberry32, xorshift32 } from "../src/random.js";

describe("seeded generators", () => {
  it("mulberry32 gives the same numbers in [0, 1) for a seed", () => {
    const m = mulberry32(42);
    expect([m(), m(), m()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  it("Rng (xoshiro128**) gives the same 32-bit outputs, floats and bytes for a seed", () => {
    const r = new Rng(42);
    expect([r.u32(), r.u32(), r.u32()]).toEqual([2837322924, 544945897, 479756282]);
    expect(new Rng(42).next()).toBe(2837322924 / 4294967296);
    const aligned = new Uint8Array(7);
    new Rng(5).fill(aligned);
    expect(Array.from(aligned)).toEqual([42, 196, 150, 215, 209, 100, 182]);
    const unaligned = new Uint8Array(new ArrayBuffer(9), 1, 8);
    new Rng(5).fill(unaligned); // byte by byte: the low byte of each output
    const r5 = new Rng(5);
    expect(Array.from(unaligned)).toEqual(Array.from({ length: 8 }, () => r5.u32() & 255));
  });

  it("xorshift32 gives the same numbers in (0, 1) for a seed, and seed 0 works", () => {
    const x = xorshift32(42);
    expect([x(), x(), x()]).toEqual([0.00264389265794307, 0.6603119774954394, 0.11095708690118045]);
    const z = xorshift32(0);
    expect(z()).toBeGreaterThan(0);
  });
});
