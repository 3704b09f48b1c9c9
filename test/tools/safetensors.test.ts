// Tests of the bounded safetensors reader and the atomic writer: round trips and every malformed-header path.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bufferSource } from "../../src/gguf/byte-source.js";
import { SafetensorsError } from "../../src/errors.js";
import { openSafetensors, parseSafetensors, writeSafetensors } from "../../src/tools/safetensors.js";
import { encodeFromF32 } from "../../src/tools/tensor-codec.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { Rng } from "../../src/random.js";
import { fixture, scratchDir } from "../fixtures.js";

const dir = scratchDir("lora-edge-st-");

/** Builds raw safetensors bytes from a header object and a data section. */
function raw(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

function expectError(bytes: Uint8Array, field: RegExp, reason: RegExp): SafetensorsError {
  try {
    parseSafetensors(bufferSource(bytes), "bad.safetensors");
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    const err = e as SafetensorsError;
    expect(err.file).toBe("bad.safetensors");
    expect(err.field).toMatch(field);
    expect(err.reason).toMatch(reason);
    expect(err.message).toContain("bad.safetensors");
    return err;
  }
  throw new Error("expected a SafetensorsError");
}

describe("safetensors", () => {
  it("round-trips F32, F16 and BF16 tensors through the writer and reader", () => {
    const x = Float32Array.from([1, -2.5, 0.333, 65504, 1e-3, 0]);
    const p = join(dir, "rt.safetensors");
    writeSafetensors(p, [
      { name: "a", dtype: "F32", shape: [2, 3], data: encodeFromF32(x, GgmlType.F32) },
      { name: "b", dtype: "F16", shape: [6], data: encodeFromF32(x, GgmlType.F16) },
      { name: "c", dtype: "BF16", shape: [3, 2], data: encodeFromF32(x, GgmlType.BF16) },
    ], { format: "pt" });
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const len = Number(readFileSync(p).readBigUInt64LE(0));
    expect((8 + len) % 8).toBe(0);
    using f = openSafetensors(p);
    expect(f.metadata).toEqual({ format: "pt" });
    expect(f.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([["a", "F32", [2, 3]], ["b", "F16", [6]], ["c", "BF16", [3, 2]]]);
    expect([...f.readF32("a")]).toEqual([...x]);
    expect([...f.readF32("b")]).toEqual([1, -2.5, 0.3330078125, 65504, 0.0010004043579101562, 0]);
    expect([...f.readF32("c")]).toEqual([1, -2.5, 0.33203125, 65536, 0.00099945068359375, 0]);
  });

  it("reads the PEFT fixture's header (GPT-2 LoRA, F32)", () => {
    using f = openSafetensors(fixture("peft/gpt2-dialogpt-synthetic/adapter_model.safetensors"));
    const t = f.tensor("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight")!;
    expect(t.dtype).toBe("F32");
    expect(t.shape).toEqual([8, 768]);
    expect(f.readF32(t).length).toBe(8 * 768);
  });

  it("rejects malformed headers with the file, field and offset", () => {
    const data = new Uint8Array(16);
    const ok = { t: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
    expect(parseSafetensors(bufferSource(raw(ok, data)), "x").tensors).toHaveLength(1);
    expectError(new Uint8Array(5), /header\.length/, /too short/);
    expectError(raw(ok, data, 1n << 40n), /header\.length/, /past the end/);
    expectError(raw("{not json", data), /header/, /JSON/);
    expectError(raw("[1,2]", data), /header/, /not a JSON object/);
    expectError(raw({ t: { ...ok.t, dtype: "I64" } }, data), /t\.dtype/, /I64 is not supported/);
    expectError(raw({ t: { ...ok.t, dtype: "Q9" } }, data), /t\.dtype/, /unknown dtype/);
    expectError(raw({ t: { ...ok.t, shape: [2, -1] } }, data), /t\.shape\[1\]/, /non-negative/);
    expectError(raw({ t: { ...ok.t, shape: [2, 3] } }, data), /t\.data_offsets/, /needs 24/);
    expectError(raw({ t: { ...ok.t, data_offsets: [0, 32] } }, data), /t\.data_offsets/, /past the end/);
    expectError(raw({ t: { ...ok.t, data_offsets: [8, 0] } }, data), /t\.data_offsets/, /before begin/);
    expectError(raw({ t: { ...ok.t, data_offsets: [0] } }, data), /t\.data_offsets/, /two non-negative/);
    expectError(raw({ __metadata__: { a: 1 } }, data), /__metadata__\.a/, /strings/);
    const overlap = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } };
    const e = expectError(raw(overlap, data), /b\.data_offsets/, /overlaps/);
    expect(e.offset).toBeGreaterThan(8);
    // The tensors must tile the data section exactly: no gap, nothing after the last tensor.
    const gap = { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } };
    expectError(raw(gap, data), /b\.data_offsets/, /a gap of 4 bytes/);
    expectError(raw({ t: { ...ok.t, shape: [3], data_offsets: [0, 12] } }, data), /header\.length/, /4 byte\(s\) left over/);
    expectError(raw({ t: { ...ok.t, shape: [3], data_offsets: [4, 16] } }, data), /t\.data_offsets/, /a gap of 4 bytes/);
    expect(parseSafetensors(bufferSource(raw({}, new Uint8Array(0))), "x").tensors).toHaveLength(0);
    expectError(raw({}, new Uint8Array(1)), /header\.length/, /1 byte\(s\) left over/);
  });

  it("a header length lowered by 1 over a space-padded header is refused, though its JSON still parses (GPT-2 PEFT fixture)", () => {
    const src = readFileSync(fixture("peft/gpt2-dialogpt-synthetic/adapter_model.safetensors"));
    const n = src.readBigUInt64LE(0);
    expect(src.subarray(8 + Number(n) - 2, 8 + Number(n)).toString()).toBe("  "); // its header ends in padding spaces
    const bad = Buffer.from(src);
    bad.writeBigUInt64LE(n - 1n, 0);
    JSON.parse(bad.subarray(8, 8 + Number(n) - 1).toString()); // still valid JSON
    const e = expectError(new Uint8Array(bad), /header\.length/, /1 byte\(s\) left over/);
    expect(e.offset).toBe(0);
  });

  it("corrupted files either parse within bounds or throw SafetensorsError, never anything else", () => {
    const x = new Float32Array(64).map((_, i) => i);
    const p = join(dir, "fuzz.safetensors");
    writeSafetensors(p, [
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", dtype: "F32", shape: [4, 8], data: encodeFromF32(x.subarray(0, 32), GgmlType.F32) },
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", dtype: "F16", shape: [8, 4], data: encodeFromF32(x.subarray(32), GgmlType.F16) },
    ]);
    const good = new Uint8Array(readFileSync(p));
    const rng = new Rng(12345);
    const next = () => rng.u32();
    let parsed = 0;
    for (let iter = 0; iter < 2000; iter++) {
      const bytes = good.slice(0, iter % 7 === 0 ? next() % good.length : good.length);
      for (let k = 0; k < 1 + (next() % 4); k++) if (bytes.length) bytes[next() % Math.min(bytes.length, 300)] = next() & 255;
      try {
        const f = parseSafetensors(bufferSource(bytes), "fuzz");
        for (const t of f.tensors) {
          expect(t.offset + t.byteLength).toBeLessThanOrEqual(bytes.length);
          expect(f.readF32(t).length).toBe(t.nElements);
        }
        parsed++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(SafetensorsError);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });

  it("names the file when it cannot be opened", () => {
    expect(() => openSafetensors(join(dir, "none.safetensors"))).toThrow(/none\.safetensors: file: no such file/);
    const p = join(dir, "short.safetensors");
    writeFileSync(p, Buffer.from([1, 2, 3]));
    expect(() => openSafetensors(p)).toThrow(SafetensorsError);
  });
});
