// The tools' tensor codec (the core's kernel table) against ggml's own quantized bytes and dequantized values.
import { describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { canCode, decodeToF32, encodeFromF32 } from "../../src/tools/tensor-codec.js";
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

  it("codes exactly the types the core can quantize, and refuses the rest", () => {
    expect([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K].every(canCode)).toBe(true);
    expect(canCode(GgmlType.Q5_0)).toBe(false);
    expect(() => encodeFromF32(new Float32Array(32), GgmlType.Q5_0)).toThrow(/cannot encode ggml type Q5_0/);
    expect(() => encodeFromF32(new Float32Array(31), GgmlType.Q4_0)).toThrow(/block size/);
  });
});
