// Arena over wasm memory: growth keeps data and gives fresh views, blocks are reused and coalesced, limits are typed errors.
import { describe, expect, test } from "vitest";
import { Arena, ArenaError } from "../../src/core/arena.js";
import { wasm } from "../../src/core/wasm-api.js";
import { loadCore } from "../../src/core/index.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { matVec } from "../../src/core/reference/lowrank.js";
import { randomF32, normwise } from "./helpers.js";

describe("arena", () => {
  test("grows the memory, keeps data, and views made after growth see it", () => {
    const mem = new wasm.Memory({ initial: 1, maximum: 64 });
    const a = new Arena(mem, 100);
    const p = a.alloc(1000);
    expect(p % 64).toBe(0);
    expect(p).toBeGreaterThanOrEqual(100);
    a.f32(p, 250).fill(1.5);
    const before = mem.buffer.byteLength;
    const q = a.alloc(3 * 65536);
    expect(mem.buffer.byteLength).toBeGreaterThan(before);
    expect(Array.from(a.f32(p, 250)).every((v) => v === 1.5)).toBe(true);
    a.u8(q, 3 * 65536).fill(7);
    expect(a.u8(q + 3 * 65536 - 1, 1)[0]).toBe(7);
  });

  test("released blocks are reused and merge with their neighbours", () => {
    const a = new Arena(new wasm.Memory({ initial: 1, maximum: 64 }), 0);
    const x = a.alloc(64), y = a.alloc(64), z = a.alloc(64), top = a.alloc(64);
    a.release(x);
    a.release(z);
    a.release(y); // x, y, z now one free block of 192 bytes
    expect(a.alloc(192)).toBe(x);
    a.release(x);
    a.release(top); // everything free: the bump pointer returns to the start
    expect(a.alloc(64)).toBe(x);
    expect(() => a.release(12345)).toThrow(ArenaError);
  });

  test("scoped allocations are all released", () => {
    const a = new Arena(new wasm.Memory({ initial: 1, maximum: 64 }), 0);
    const first = a.alloc(64);
    a.scoped((s) => {
      s.alloc(1000);
      s.put(new Float32Array(10));
    });
    expect(a.alloc(64)).toBe(first + 64);
  });

  test("running out of the allowed bytes is a typed error, not a crash", () => {
    const a = new Arena(new wasm.Memory({ initial: 1, maximum: 4 }), 0, 4 * 65536);
    expect(() => a.alloc(5 * 65536)).toThrow(/exhausted/);
    const b = new Arena(new wasm.Memory({ initial: 1, maximum: 2 }), 0);
    expect(() => b.alloc(3 * 65536)).toThrow(/could not grow/);
  });

  test("kernels work on data placed above 2 GiB (unsigned pointers end to end)", async () => {
    const core = await loadCore({ build: "simd" });
    const pad = core.arena.alloc(2 ** 31); // untouched pages: virtual only
    const w = randomF32(8 * 64, 3);
    const m = core.uploadF32(w, 8, 64);
    expect(m.ptr).toBeGreaterThan(2 ** 31);
    const x = randomF32(64, 4);
    expect(normwise(core.gemv(m, x), matVec(w, x, 8, 64))).toBeLessThanOrEqual(1e-6);
    expect(Array.from(core.dequantize(GgmlType.F32, new Uint8Array(w.buffer)))).toEqual(Array.from(w));
    core.free(m);
    core.arena.release(pad);
  });
});
