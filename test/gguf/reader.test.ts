// The GGUF reader on every fixture: versions, metadata, tensor tables, hyper-parameters, lazy data and refusals.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES, allFixtureGgufs, fixture, scratchDir } from "../fixtures.js";
import { GgufArray, GgufValueType, openGguf, parseGguf } from "../../src/gguf/reader.js";
import { bufferSource } from "../../src/gguf/byte-source.js";
import { GgufError } from "../../src/gguf/errors.js";
import { modelHparams, adapterMeta } from "../../src/gguf/metadata.js";
import { GGML_TYPES, ggmlTypeByName } from "../../src/gguf/ggml-types.js";
import { buildHeader } from "../../src/gguf/writer.js";

function expectGgufError(fn: () => unknown, field: RegExp): GgufError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GgufError);
    expect((e as GgufError).field).toMatch(field);
    return e as GgufError;
  }
  throw new Error("expected a GgufError");
}

describe("gguf reader", () => {
  it("parses every fixture", () => {
    const files = allFixtureGgufs();
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const g = openGguf(f);
      expect(g.version).toBe(3);
      expect(g.kv.size).toBeGreaterThan(0);
      for (const t of g.tensors) expect(t.offset + t.byteSize).toBeLessThanOrEqual(g.fileSize);
      g.close();
    }
  });

  it("reads stories260K's hyper-parameters as the fixtures README states", () => {
    for (const name of ["stories260K", "stories260K-Q4_0", "stories260K-Q8_0"]) {
      using g = openGguf(fixture(`models/${name}.gguf`));
      expect(modelHparams(g)).toMatchObject({
        architecture: "llama", nEmbd: 64, nFf: 172, nLayer: 5, nHead: 8, nHeadKv: 4, ropeDims: 8, nVocab: 512, headDim: 8,
      });
      expect(g.tensors).toHaveLength(48);
      expect(g.get("tokenizer.ggml.model")).toBe("llama");
    }
    using f32 = openGguf(fixture("models/stories260K.gguf"));
    expect(f32.tensors.every((t) => t.type.name === "F32")).toBe(true);
    using q4 = openGguf(fixture("models/stories260K-Q4_0.gguf"));
    const count = (n: string) => q4.tensors.filter((t) => t.type.name === n).length;
    expect([count("Q4_0"), count("Q8_0"), count("F16"), count("F32")]).toEqual([31, 1, 5, 11]);
  });

  it("reads arrays of strings with their item types and keeps 64-bit values exact", () => {
    using g = openGguf(fixture("models/stories260K.gguf"));
    const tokens = g.kv.get("tokenizer.ggml.tokens")!;
    expect(tokens.type).toBe(GgufValueType.ARRAY);
    expect((tokens.value as GgufArray).itemType).toBe(GgufValueType.STRING);
    const list = g.get("tokenizer.ggml.tokens") as string[];
    expect(list.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(g.get("tokenizer.ggml.seperator_token_id")).toBe(4294967295);
  });

  it("reads adapter metadata", () => {
    using a = openGguf(fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf"));
    expect(adapterMeta(a)).toMatchObject({ generalType: "adapter", architecture: "llama", adapterType: "lora", alpha: 8 });
  });

  it("reads tensor data lazily, exactly, and in sub-ranges", () => {
    const path = fixture("models/stories260K.gguf");
    const raw = readFileSync(path);
    using g = openGguf(path);
    const t = g.tensor("blk.2.attn_q.weight")!;
    expect(t.ne).toEqual([64, 64]);
    expect(t.rowBytes).toBe(256);
    const bytes = g.readTensor(t);
    expect(Buffer.from(bytes).equals(raw.subarray(t.offset, t.offset + t.byteSize))).toBe(true);
    const row3 = g.readTensorBytes(t, 3 * t.rowBytes, t.rowBytes);
    expect(Buffer.from(row3).equals(raw.subarray(t.offset + 3 * 256, t.offset + 4 * 256))).toBe(true);
    expect(() => g.readTensorBytes(t, t.byteSize - 4, 8)).toThrow(GgufError);
    expect(() => g.readTensor("no.such.tensor")).toThrow(GgufError);
  });

  it("agrees with ggml on every quantized type's byte size (the goldens are laid out by ggml)", () => {
    using g = openGguf(fixture("quant/ggml-quant-goldens-256x32.gguf"));
    const quant = g.tensors.filter((t) => t.name.endsWith(".quant"));
    expect(quant.length).toBe(14);
    const sorted = [...g.tensors].sort((a, b) => a.offset - b.offset);
    for (const t of quant) {
      const traits = ggmlTypeByName(t.name.replace(".quant", ""));
      expect(traits, t.name).toBeDefined();
      expect(t.type).toBe(traits);
      expect(t.byteSize).toBe((8192 / traits!.blockSize) * traits!.typeSize);
      const next = sorted[sorted.indexOf(t) + 1];
      expect(next.offset - t.offset).toBe(Math.ceil(t.byteSize / g.alignment) * g.alignment);
    }
    const ids = GGML_TYPES.map((x) => x.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("refuses GGUF v1, unknown versions, bad magic and missing files with the field and offset", () => {
    const raw = new Uint8Array(readFileSync(fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf")));
    const v1 = raw.slice(); v1[4] = 1;
    const e = expectGgufError(() => parseGguf(bufferSource(v1), "v1.gguf"), /header.version/);
    expect(e.offset).toBe(4);
    expect(e.message).toMatch(/version 1 is not supported/);
    const v9 = raw.slice(); v9[4] = 9;
    expectGgufError(() => parseGguf(bufferSource(v9), "v9.gguf"), /header.version/);
    const bad = raw.slice(); bad[0] = 0x47 ^ 1;
    expectGgufError(() => parseGguf(bufferSource(bad), "bad.gguf"), /header.magic/);
    expectGgufError(() => openGguf(join(scratchDir(), "missing.gguf")), /file/);
    expectGgufError(() => openGguf(FIXTURES), /file/);
  });

  it("parses GGUF v2 the same as v3", () => {
    const raw = new Uint8Array(readFileSync(fixture("models/stories260K.gguf")));
    const v2 = raw.slice(); v2[4] = 2;
    const g = parseGguf(bufferSource(v2), "v2.gguf");
    expect(g.version).toBe(2);
    expect(modelHparams(g).nEmbd).toBe(64);
  });

  it("refuses duplicate keys, duplicate tensor names, misaligned and overlapping data, unknown types", () => {
    const tensor = (name: string, type = 0) => ({ name, type, ne: [8], data: new Uint8Array(32) });
    const file = (kv: { key: string; type: GgufValueType; value: number | string }[], tensors: ReturnType<typeof tensor>[], patch?: (b: Uint8Array, dv: DataView) => void) => {
      const { header } = buildHeader({ kv, tensors });
      const dataStart = Math.ceil(header.byteLength / 32) * 32;
      const bytes = new Uint8Array(dataStart + 64 * Math.max(1, tensors.length));
      bytes.set(header);
      patch?.(bytes, new DataView(bytes.buffer));
      return bufferSource(bytes);
    };
    const kvA = { key: "a", type: GgufValueType.UINT32, value: 1 };
    // buildHeader itself refuses duplicates, so duplicate keys are made by renaming one key in the bytes.
    const dupKey = file([kvA, { key: "b", type: GgufValueType.UINT32, value: 2 }], [], (b) => { b[24 + (8 + 1 + 4 + 4) + 8] = "a".charCodeAt(0); });
    expectGgufError(() => parseGguf(dupKey, "dup-key"), /kv\[1\].key/);
    const dupName = file([], [tensor("x"), tensor("y")], (b) => { const i = b.lastIndexOf("y".charCodeAt(0)); b[i] = "x".charCodeAt(0); });
    expectGgufError(() => parseGguf(dupName, "dup-name"), /tensor\[1\].name/);
    const unknownType = file([], [tensor("x")], (b, dv) => { dv.setUint32(24 + 8 + 1 + 4 + 8, 4, true); });
    expectGgufError(() => parseGguf(unknownType, "type"), /x.type/);
    const misaligned = file([], [tensor("x")], (b, dv) => { dv.setBigUint64(24 + 8 + 1 + 4 + 8 + 4, 4n, true); });
    expectGgufError(() => parseGguf(misaligned, "misaligned"), /x.offset/);
    const overlap = file([], [tensor("x"), tensor("y")], (b, dv) => {
      const infoY = 24 + (8 + 1 + 4 + 8 + 4 + 8) + 8 + 1 + 4 + 8 + 4;
      dv.setBigUint64(infoY, 0n, true);
    });
    expectGgufError(() => parseGguf(overlap, "overlap"), /y.offset/);
    const past = file([], [tensor("x")], (b, dv) => { dv.setBigUint64(24 + 8 + 1 + 4 + 8 + 4, 1024n, true); });
    expectGgufError(() => parseGguf(past, "past-end"), /x.offset/);
    const badAlign = file([{ key: "general.alignment", type: GgufValueType.UINT32, value: 32 }], [], (b, dv) => {
      dv.setUint32(24 + 8 + "general.alignment".length + 4, 24, true);
    });
    expectGgufError(() => parseGguf(badAlign, "align"), /general.alignment/);
  });

  it("refuses counts and lengths larger than the file before allocating", () => {
    const raw = new Uint8Array(readFileSync(fixture("models/stories260K.gguf")));
    const huge = raw.slice(); new DataView(huge.buffer).setBigUint64(8, 1n << 60n, true);
    expectGgufError(() => parseGguf(bufferSource(huge), "count"), /header.tensor_count/);
    const hugeKv = raw.slice(); new DataView(hugeKv.buffer).setBigUint64(16, 0xffffffffffffffffn, true);
    expectGgufError(() => parseGguf(bufferSource(hugeKv), "kv"), /header.kv_count/);
    const longKey = raw.slice(); new DataView(longKey.buffer).setBigUint64(24, 1n << 40n, true);
    expectGgufError(() => parseGguf(bufferSource(longKey), "key"), /kv\[0\].key.length/);
    const truncated = raw.slice(0, 5000);
    expectGgufError(() => parseGguf(bufferSource(truncated), "truncated"), /./);
  });

  it("names the array item at fault: a string's length, a boolean's byte, a string cut short", () => {
    const words = new GgufArray(GgufValueType.STRING, ["ab", "cd", "ef"]);
    const flags = new GgufArray(GgufValueType.BOOL, [true, false, true]);
    const { header } = buildHeader({ kv: [{ key: "w", type: GgufValueType.ARRAY, value: words }, { key: "f", type: GgufValueType.ARRAY, value: flags }], tensors: [] });
    // header (24) + key "w" (8 + 1) + value type (4) + item type (4) + count (8), then items of 8 + 2 bytes
    const item = (i: number) => 24 + 9 + 4 + 4 + 8 + 10 * i;
    const longString = header.slice(); new DataView(longString.buffer).setBigUint64(item(2), 1n << 40n, true);
    expect(expectGgufError(() => parseGguf(bufferSource(longString), "s"), /^w\[2\]\.length$/).offset).toBe(item(2));
    const flagsAt = item(3) + 9 + 4 + 4 + 8;
    const badBool = header.slice(); badBool[flagsAt + 1] = 7;
    expect(expectGgufError(() => parseGguf(bufferSource(badBool), "b"), /^f\[1\]$/).offset).toBe(flagsAt + 1);
    expectGgufError(() => parseGguf(bufferSource(header.slice(0, item(2) + 9)), "t"), /^w\[2\]\.length$/);
    const traced: string[] = [];
    parseGguf(bufferSource(header), "ok", { trace: (field) => traced.push(field) });
    expect(traced).toEqual(expect.arrayContaining(["w[0].length", "w[0]", "w[2]", "f[0]", "f[2]"]));
  });

  it("reads a multi-tensor file without loading it whole (reads are bounded by what is asked)", () => {
    const path = join(scratchDir(), "probe.gguf");
    writeFileSync(path, readFileSync(fixture("models/stories260K.gguf")));
    let bytesRead = 0;
    const raw = new Uint8Array(readFileSync(path));
    const counting = { size: raw.byteLength, read: (o: number, n: number) => { bytesRead += n; return raw.subarray(o, o + n); }, close() {} };
    const g = parseGguf(counting, path);
    // The header is read in one buffered chunk of at most 1 MiB; no tensor data is touched.
    expect(bytesRead).toBeLessThanOrEqual(Math.max(1 << 20, g.dataOffset));
    const before = bytesRead;
    g.readTensor("output_norm.weight");
    expect(bytesRead - before).toBe(256);
  });
});
