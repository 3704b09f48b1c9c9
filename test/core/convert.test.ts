// f16/bf16 conversions and dequantize/quantize of random data: wasm builds against the scalar references, bit for bit.
import { beforeAll, describe, expect, test } from "vitest";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { loadCore, Core, KERNELS } from "../../src/core/index.js";
import { f16ToF32, f32ToF16, f32ToBf16, f32FromBits } from "../../src/core/reference/half.js";
import { randomBlocks, randomF32, rng, sameBits } from "./helpers.js";

let cores: Core[];
beforeAll(async () => {
  cores = [await loadCore({ build: "simd" }), await loadCore()];
});

/** Interesting f32 bit patterns: random, subnormal, near f16 limits and halfway points, Inf, NaN. */
function edgeFloats(): Float32Array {
  const r = rng(7);
  const bits: number[] = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x00000001, 0x007fffff];
  for (let i = 0; i < 4000; i++) bits.push((r() * 2 ** 32) >>> 0);
  for (let e = 100; e <= 145; e++) {
    for (let k = 0; k < 40; k++) {
      const man = k < 8 ? [0, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x7fffff, 0x7ff000][k] : (r() * 0x800000) | 0;
      bits.push(((e << 23) | man) >>> 0, (0x80000000 | (e << 23) | man) >>> 0);
    }
  }
  for (const v of [65504, 65519, 65520, 65536, 2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 1e-8]) {
    bits.push(new Uint32Array(new Float32Array([v]).buffer)[0]);
  }
  return new Float32Array(new Uint32Array(bits).buffer);
}

describe("f16", () => {
  test("every non-NaN f16 decodes exactly and round-trips", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    for (const core of cores) {
      const y = core.dequantize(GgmlType.F16, bytes);
      const bad: number[] = [];
      for (let h = 0; h < 65536; h++) {
        const want = f16ToF32(h);
        if (Number.isNaN(want) ? !Number.isNaN(y[h]) : !Object.is(y[h], want)) bad.push(h);
      }
      expect(bad, core.build).toEqual([]);
      const back = new Uint16Array(core.quantize(GgmlType.F16, y).buffer);
      for (let h = 0; h < 65536; h++) if (!Number.isNaN(y[h]) && back[h] !== h) bad.push(h);
      expect(bad, `${core.build} round trip`).toEqual([]);
    }
  });

  test("f32 to f16 rounds to nearest even, Inf and NaN kept", () => {
    const x = edgeFloats();
    for (const core of cores) {
      const got = new Uint16Array(core.quantize(GgmlType.F16, x).buffer);
      const bad: number[] = [];
      for (let i = 0; i < x.length; i++) if (got[i] !== f32ToF16(x[i])) bad.push(x[i]);
      expect(bad, core.build).toEqual([]);
    }
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(2 ** -25)).toBe(0);
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(1);
    expect(f32ToF16(-0)).toBe(0x8000);
  });
});

describe("bf16", () => {
  test("f32 to bf16 and back", () => {
    const x = edgeFloats();
    for (const core of cores) {
      const got = new Uint16Array(core.quantize(GgmlType.BF16, x).buffer);
      const bad: number[] = [];
      for (let i = 0; i < x.length; i++) if (got[i] !== f32ToBf16(x[i])) bad.push(x[i]);
      const y = core.dequantize(GgmlType.BF16, new Uint8Array(got.buffer));
      for (let i = 0; i < x.length; i++) {
        const want = f32FromBits(got[i] << 16);
        if (Number.isNaN(want) ? !Number.isNaN(y[i]) : !Object.is(y[i], want)) bad.push(i);
      }
      expect(bad, core.build).toEqual([]);
    }
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // halfway, even stays
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // halfway, odd rounds up
  });
});

describe("dequantize random blocks: wasm equals the scalar reference", () => {
  for (const [id, k] of KERNELS) {
    test(k.traits.name, () => {
      for (const blocks of [1, 3, 8, 33]) {
        const bytes = randomBlocks(k.traits, blocks, id * 100 + blocks);
        const n = blocks * k.traits.blockSize;
        const want = k.ref.dequant(bytes, n);
        for (const core of cores) expect(sameBits(core.dequantize(id, bytes), want), `${core.build} ${blocks} blocks`).toBe(true);
      }
    });
  }
});

describe("quantize random data: wasm equals the scalar reference", () => {
  for (const [id, k] of KERNELS) {
    const refQuantize = k.ref.quantize;
    if (!k.quantize || !refQuantize) continue;
    test(k.traits.name, () => {
      for (const blocks of [1, 5, 64]) {
        const n = blocks * Math.max(32, k.traits.blockSize);
        const x = randomF32(n, id + blocks, 3);
        x.fill(0, 0, 32); // an all-zero block
        x.fill(0.25, 32, Math.min(64, n)); // a constant block
        const want = refQuantize(x);
        for (const core of cores) expect(Buffer.compare(core.quantize(id, x), want), core.build).toBe(0);
      }
    });
  }
});
