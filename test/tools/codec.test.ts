// Tests of the plain TypeScript tensor codec against ggml's own quantized bytes and dequantized values.
import { describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { decodeToF32, encodeFromF32, floatToHalf, halfToFloat } from "../../src/tools/tensor-codec.js";
import { fixture } from "../fixtures.js";

describe("tensor codec", () => {
  it("encodes and decodes F16, BF16, Q8_0 and Q4_0 exactly as ggml does", () => {
    using g = openGguf(fixture("quant/ggml-quant-goldens-256x32.gguf"));
    const src = decodeToF32(g.readTensor("source"), GgmlType.F32, 8192);
    for (const [name, id] of [["f16", GgmlType.F16], ["bf16", GgmlType.BF16], ["q8_0", GgmlType.Q8_0], ["q4_0", GgmlType.Q4_0]] as const) {
      const quant = g.readTensor(`${name}.quant`);
      expect(Buffer.compare(Buffer.from(encodeFromF32(src, id)), Buffer.from(quant)), name).toBe(0);
      const ref = decodeToF32(g.readTensor(`${name}.dequant_ref`), GgmlType.F32, 8192);
      expect([...decodeToF32(quant, id, 8192)], name).toEqual([...ref]);
    }
  });

  it("converts half floats with round-to-nearest-even, subnormals and overflow", () => {
    for (let h = 0; h < 0x7c00; h += 7) expect(floatToHalf(halfToFloat(h))).toBe(h);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie rounds to even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-(2 ** -25))).toBe(0x8000);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
  });
});
