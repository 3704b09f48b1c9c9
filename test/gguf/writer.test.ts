// The GGUF writer: byte-exact round trips of every fixture, atomic writes, and llama.cpp loading rewritten files.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { allFixtureGgufs, fixture, scratchDir } from "../fixtures.js";
import { GgufArray, GgufValueType, openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { nextTokenLogProbs } from "../llama.js";

const dir = scratchDir();

function rewrite(path: string): string {
  const out = join(dir, `rewritten-${basename(path)}`);
  using g = openGguf(path);
  writeGguf(out, { kv: kvInputsFrom(g), tensors: tensorInputsFrom(g) });
  return out;
}

describe("gguf writer", () => {
  it("round-trips every fixture: read(write(read(f))) equals read(f), byte for byte", () => {
    for (const f of allFixtureGgufs()) {
      const out = rewrite(f);
      expect(Buffer.compare(readFileSync(out), readFileSync(f)), f).toBe(0);
      using a = openGguf(f);
      using b = openGguf(out);
      expect([...b.kv.values()].map((e) => [e.key, e.type])).toEqual([...a.kv.values()].map((e) => [e.key, e.type]));
      expect(b.tensors.map((t) => [t.name, t.type.id, t.ne, t.byteSize])).toEqual(a.tensors.map((t) => [t.name, t.type.id, t.ne, t.byteSize]));
    }
  });

  it("writes every value type, nested arrays and a custom alignment", () => {
    const out = join(dir, "types.gguf");
    const kv = [
      { key: "general.alignment", type: GgufValueType.UINT32, value: 64 },
      { key: "u8", type: GgufValueType.UINT8, value: 255 }, { key: "i8", type: GgufValueType.INT8, value: -128 },
      { key: "u16", type: GgufValueType.UINT16, value: 65535 }, { key: "i16", type: GgufValueType.INT16, value: -32768 },
      { key: "i32", type: GgufValueType.INT32, value: -5 }, { key: "f32", type: GgufValueType.FLOAT32, value: 0.5 },
      { key: "f64", type: GgufValueType.FLOAT64, value: Math.PI }, { key: "u64", type: GgufValueType.UINT64, value: (1n << 64n) - 1n },
      { key: "i64", type: GgufValueType.INT64, value: -(1n << 63n) }, { key: "b", type: GgufValueType.BOOL, value: true },
      { key: "s", type: GgufValueType.STRING, value: "héllo ▁ 🦙" },
      { key: "nested", type: GgufValueType.ARRAY, value: new GgufArray(GgufValueType.ARRAY, [new GgufArray(GgufValueType.INT32, [1, 2]), new GgufArray(GgufValueType.STRING, ["x"])]) },
      { key: "typed", type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: new Float32Array([1.5, -2]) },
    ];
    const data = new Uint8Array(18 * 2).map((_, i) => i);
    writeGguf(out, { kv, tensors: [{ name: "q", type: 2, ne: [32, 2], data }, { name: "f", type: 0, ne: [3], data: () => new Uint8Array(12).fill(7) }] });
    using g = openGguf(out);
    expect(g.alignment).toBe(64);
    expect(g.get("u64")).toBe((1n << 64n) - 1n);
    expect(g.get("i64")).toBe(-(1n << 63n));
    expect(g.get("s")).toBe("héllo ▁ 🦙");
    expect(g.get("nested")).toEqual([[1, 2], ["x"]]);
    expect(g.get("typed")).toEqual([1.5, -2]);
    expect(g.tensors.map((t) => t.offset % 64)).toEqual([0, 0]);
    expect([...g.readTensor("q")]).toEqual([...data]);
    expect([...g.readTensor("f")]).toEqual(new Array(12).fill(7));
  });

  it("leaves nothing behind when a write fails, and keeps an existing file intact", () => {
    const out = join(dir, "atomic.gguf");
    writeGguf(out, { kv: [{ key: "k", type: GgufValueType.UINT32, value: 1 }], tensors: [] });
    const before = readFileSync(out);
    const bad = { name: "t", type: 0, ne: [4], data: () => new Uint8Array(3) };
    expect(() => writeGguf(out, { kv: [], tensors: [bad] })).toThrow(/need 16/);
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(() => writeGguf(join(dir, "dup.gguf"), { kv: [{ key: "k", type: 4, value: 1 }, { key: "k", type: 4, value: 2 }], tensors: [] })).toThrow(/duplicate/);
    expect(existsSync(join(dir, "dup.gguf"))).toBe(false);
  });

  it("llama.cpp loads a rewritten model and adapter and gives identical next-token distributions", async () => {
    const model = fixture("models/stories260K-Q4_0.gguf");
    const adapter = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
    const original = await nextTokenLogProbs(model, [{ filePath: adapter, scale: 1 }]);
    const rewritten = await nextTokenLogProbs(rewrite(model), [{ filePath: rewrite(adapter), scale: 1 }]);
    expect(original.size).toBe(512);
    expect([...rewritten.entries()]).toEqual([...original.entries()]);
  });
});
