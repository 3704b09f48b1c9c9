// Bit-exactness of dequantization and quantization (wasm and scalar reference) against ggml's own goldens.
import { beforeAll, describe, expect, test } from "vitest";
import { openGguf, GgufFile } from "../../src/gguf/reader.js";
import { ggmlTypeByName } from "../../src/gguf/ggml-types.js";
import { loadCore, kernelsFor, Core } from "../../src/core/index.js";
import { fixture } from "../fixtures.js";

const DEQUANT = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"];
const QUANT = ["f16", "bf16", "q4_0", "q4_1", "q8_0", "q4_K", "q6_K"];

let file: GgufFile;
let cores: Core[];

function asF32(b: Uint8Array): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
/** Index of the first differing bit pattern, or -1. */
function firstBitDiff(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

beforeAll(async () => {
  file = openGguf(fixture("quant/ggml-quant-goldens-256x32.gguf"));
  cores = [await loadCore({ build: "simd" }), await loadCore()];
});

describe("dequantize matches ggml's to_float bit for bit", () => {
  for (const name of DEQUANT) {
    test(name, () => {
      const q = file.tensor(`${name}.quant`)!;
      const ref = asF32(file.readTensor(`${name}.dequant_ref`));
      const type = ggmlTypeByName(name)!;
      expect(q.type.id).toBe(type.id);
      const bytes = file.readTensor(q);
      for (const core of cores) {
        expect(firstBitDiff(core.dequantize(type.id, bytes), ref), core.build).toBe(-1);
      }
      expect(firstBitDiff(kernelsFor(type.id).ref.dequant(bytes, ref.length), ref), "scalar reference").toBe(-1);
    });
  }
});

describe("quantize matches ggml's reference quantizer byte for byte", () => {
  for (const name of QUANT) {
    test(name, () => {
      const src = asF32(file.readTensor("source"));
      const want = file.readTensor(`${name}.quant`);
      const type = ggmlTypeByName(name)!;
      for (const core of cores) expect(Buffer.compare(core.quantize(type.id, src), want), core.build).toBe(0);
      expect(Buffer.compare(kernelsFor(type.id).ref.quantize!(src), want), "scalar reference").toBe(0);
    });
  }
});
