// Inputs the training reference refuses, each with a typed error naming the file and the field.
import path from "node:path";
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { TrainInputError } from "../../src/errors.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { openGguf } from "../../src/gguf/reader.js";
import { writeGguf } from "../../src/gguf/writer.js";
import { synthModelSpec } from "../../src/tools/synth.js";
import { loraFromGguf, seededLora } from "../../src/train/reference/lora.js";
import { loadReferenceModel, loss } from "../../src/train/reference/model.js";
import { fixture, scratchDir } from "../fixtures.js";
import { quantTestShape, writeQuantModel } from "./quant-model.js";

const dir = scratchDir("lora-edge-train-inputs-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): TrainInputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TrainInputError);
    return e as TrainInputError;
  }
  throw new Error("nothing was thrown");
}

describe("training reference inputs", () => {
  it("refuses a base of an architecture it does not train, naming the key and its offset", () => {
    const spec = synthModelSpec({ shape: { ...quantTestShape("llama"), nEmbd: 64, nFf: 64 }, type: "F32" });
    const file = path.join(dir, "gpt2.gguf");
    writeGguf(file, { kv: spec.kv.map((e) => (e.key === "general.architecture" ? { ...e, value: "gpt2" } : e)), tensors: spec.tensors });
    const e = thrown(() => loadReferenceModel(openGguf(file)));
    expect(e).toMatchObject({ code: "TRAIN_INPUT", file, field: "general.architecture" });
    expect(e.message).toMatch(/unsupported architecture 'gpt2' \(supported: llama, mistral, smollm, qwen2\)/);
    expect(e.offset).toBeGreaterThan(0);
  });

  it("refuses a base whose tensor has the wrong shape, naming the tensor and its offset", () => {
    const spec = synthModelSpec({ shape: { ...quantTestShape("llama"), nEmbd: 64, nFf: 64 }, type: "F32" });
    const file = path.join(dir, "bad-shape.gguf");
    const tensors = spec.tensors.map((t) => (t.name === "blk.0.ffn_up.weight" ? { name: t.name, type: GgmlType.F32, ne: [64, 32], data: new Uint8Array(64 * 32 * 4) } : t));
    writeGguf(file, { kv: spec.kv, tensors });
    const e = thrown(() => loadReferenceModel(openGguf(file)));
    expect(e).toMatchObject({ file, field: "blk.0.ffn_up.weight" });
    expect(e.offset).toBeGreaterThan(0);
    expect(e.reason).toBe("shape [64, 32], expected [64, 64]");
  });

  it("refuses an adapter made for another base, naming the first tensor that does not fit", () => {
    const file = path.join(dir, "base.gguf");
    writeQuantModel(file, "llama", "Q4_0");
    const model = loadReferenceModel(openGguf(file));
    const adapter = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
    const e = thrown(() => loraFromGguf(openGguf(adapter), model.config));
    expect(e).toMatchObject({ file: adapter, field: "blk.0.attn_q.weight.lora_a", reason: "shape [64, 4], expected [256, 4]" });
  });

  it("refuses a rank of 0, tokens outside the vocabulary, and a mask that leaves nothing to learn", () => {
    const model = loadReferenceModel(openGguf(fixture("models/stories260K.gguf")));
    expect(() => seededLora(model.config, { rank: 0, alpha: 1, seed: 1 })).toThrow(/rank must be a positive integer, got 0/);
    expect(() => loss(model, undefined, [{ tokens: [1, 512] }])).toThrow(/token 512 outside the vocabulary of 512/);
    expect(() => loss(model, undefined, [{ tokens: [1] }])).toThrow(/at least two tokens/);
    expect(() => loss(model, undefined, [{ tokens: [1, 2, 3], lossMask: [true] }])).toThrow(/loss mask of 1 entries for 2 predictions/);
    expect(() => loss(model, undefined, [{ tokens: [1, 2, 3], lossMask: [false, false] }])).toThrow(/no token to learn from/);
  });
});
