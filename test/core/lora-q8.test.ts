// Compact adapter kernels (t to 7-bit integers, y += s B t over int8 rows) against their scalar references, extremes included.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCore, createPool, Core, KernelPool } from "../../src/core/index.js";
import { LORA_T_HEADER, loraBMeta, loraRankPad, loraTBytes, packLoraB, unpackLoraB, uploadLoraQ8, freeLoraQ8, loraQ8Apply, type PackedLoraB } from "../../src/core/lora-q8.js";
import { quantizeLoraTRef, loraBQ8AccRef, loraBQ8AccBatchRef } from "../../src/core/reference/lora-q8.js";
import { matVec } from "../../src/core/reference/lowrank.js";
import { randomF32, normwise, sameBits } from "./helpers.js";

let cores: Core[];
let pool: KernelPool;
beforeAll(async () => {
  cores = [await loadCore({ build: "simd" }), await loadCore()];
  pool = await createPool({ threads: 2, maxBytes: 64 << 20, minParallelBytes: 0 });
  cores.push(pool.core);
});
afterAll(() => pool?.dispose());

/** Runs lora_quantize_t on t; returns dt and the block's values unbiased. */
function wasmQuantizeT(core: Core, t: Float32Array, rPad: number): { dt: number; q: Int8Array } {
  return core.arena.scoped((s) => {
    const tp = s.put(t), tq = s.alloc(LORA_T_HEADER + rPad);
    core.call("lora_quantize_t", tp, t.length, rPad, tq);
    const dt = core.arena.f32(tq, 1)[0];
    const q = Int8Array.from(core.arena.u8(tq + LORA_T_HEADER, rPad), (v) => v - 64);
    return { dt, q };
  });
}

/** Runs lora_b_q8_acc over rows [r0, r0+n) of a packed B with a given quantized t; returns the new y (all rows). */
function wasmBAcc(core: Core, b: PackedLoraB, t: { dt: number; q: Int8Array }, y: Float32Array, s: number, r0 = 0, n = b.rows): Float32Array {
  return core.arena.scoped((sc) => {
    const bp = sc.put(b.q), mp = sc.put(loraBMeta(b)), yp = sc.put(y);
    const tq = sc.alloc(loraTBytes(b.rank));
    core.arena.f32(tq, 1)[0] = t.dt;
    core.arena.u8(tq + LORA_T_HEADER, b.rPad).set(Uint8Array.from(t.q, (v) => v + 64));
    core.call("lora_b_q8_acc", bp + r0 * b.rPad, mp + r0 * 8, tq, yp + r0 * 4, n, b.rPad, s);
    return core.arena.f32(yp, b.rows).slice();
  });
}

describe("packing B as int8 rows", () => {
  test("zero rows, rows at the int8 limits, rank padded with zeros; values within half a step", () => {
    const rows = 7, rank = 5;
    const b = randomF32(rows * rank, 3, 0.2);
    b.fill(0, 0, rank); // row 0 all zeros
    for (let k = 0; k < rank; k++) b[rank + k] = k % 2 ? 3 : -3; // row 1 at +-127
    b[2 * rank] = 1e30; // row 2: one huge value, the rest round to 0
    const p = packLoraB(b, rows, rank);
    expect(p.rPad).toBe(16);
    expect(Array.from(p.q.subarray(0, 16))).toEqual(new Array(16).fill(0));
    expect(Array.from(p.q.subarray(16, 16 + rank))).toEqual([-127, 127, -127, 127, -127]);
    expect(p.q[32]).toBe(127);
    expect(Array.from(p.q.subarray(33, 48))).toEqual(new Array(15).fill(0));
    expect(p.scales[0]).toBe(0);
    expect(p.scales[1]).toBe(Math.fround(3 / 127));
    expect([p.sums[0], p.sums[1], p.sums[2]]).toEqual([0, -127, 127]);
    for (let r = 0; r < rows; r++) for (let k = rank; k < 16; k++) expect(p.q[r * 16 + k]).toBe(0);
    const back = unpackLoraB(p);
    for (let r = 3; r < rows; r++) {
      const d = p.scales[r];
      for (let k = 0; k < rank; k++) expect(Math.abs(back[r * rank + k] - b[r * rank + k])).toBeLessThanOrEqual(d / 2 + 1e-12);
    }
  });
});

describe("lora_quantize_t against the reference (bit for bit)", () => {
  const cases: [string, Float32Array][] = [
    ["random r4", randomF32(4, 1)],
    ["random r16", randomF32(16, 2)],
    ["random r17", randomF32(17, 3, 5)],
    ["random r64", randomF32(64, 4, 1e-3)],
    ["zeros", new Float32Array(16)],
    ["one huge value", Float32Array.from({ length: 20 }, (_, i) => (i === 7 ? -1e30 : i))],
    ["ties (x.5 steps)", Float32Array.from({ length: 9 }, (_, i) => (i === 0 ? 63 : i - 4.5))],
    ["all at the limit", Float32Array.from({ length: 33 }, (_, i) => (i % 2 ? 2 : -2))],
  ];
  test.each(cases)("%s", (_name, t) => {
    const rPad = loraRankPad(t.length);
    const want = quantizeLoraTRef(t, rPad);
    for (const core of cores) {
      const got = wasmQuantizeT(core, t, rPad);
      expect(got.dt, core.build).toBe(want.dt);
      expect(Array.from(got.q), core.build).toEqual(Array.from(want.q));
      expect(Math.max(...Array.from(got.q, Math.abs))).toBeLessThanOrEqual(63);
    }
  });
});

describe("lora_b_q8_acc against the reference (normwise <= 1e-6)", () => {
  const shapes: [number, number][] = [[1, 4], [3, 16], [45, 4], [64, 16], [37, 17], [128, 33], [20, 64]];
  test.each(shapes)("%i rows, rank %i", (rows, rank) => {
    const b = packLoraB(randomF32(rows * rank, rows + rank, 0.05), rows, rank);
    const t = quantizeLoraTRef(randomF32(rank, rank + 9, 2), b.rPad);
    const y = randomF32(rows, 17);
    const want = loraBQ8AccRef(b, t, y, 0.75);
    for (const core of cores) expect(normwise(wasmBAcc(core, b, t, y, 0.75), want), core.build).toBeLessThanOrEqual(1e-6);
  });

  test("int8 and 7-bit limits in every lane (largest 16-bit partial sums), rank 64", () => {
    const rows = 11, rank = 64;
    for (const [bv, tv] of [[1, 1], [-1, 1], [1, -1], [-1, -1]]) {
      const b = packLoraB(new Float32Array(rows * rank).fill(bv), rows, rank);
      expect(b.q[0]).toBe(bv * 127);
      const t = quantizeLoraTRef(new Float32Array(rank).fill(tv), b.rPad);
      expect(t.q[0]).toBe(tv * 63);
      const y = new Float32Array(rows);
      const want = loraBQ8AccRef(b, t, y, 1);
      expect(Math.abs(want[0])).toBeGreaterThan(0);
      for (const core of cores) expect(normwise(wasmBAcc(core, b, t, y, 1), want), `${core.build} ${bv} ${tv}`).toBeLessThanOrEqual(1e-6);
    }
  });

  test("alternating extremes, zero rows and a zero t leave y as it was where they should", () => {
    const rows = 9, rank = 20;
    const bf = Float32Array.from({ length: rows * rank }, (_, i) => (i % 3 === 0 ? -1 : 1));
    bf.fill(0, 2 * rank, 3 * rank); // row 2 zero
    bf.fill(0, 8 * rank, 9 * rank); // row 8 (tail) zero
    const b = packLoraB(bf, rows, rank);
    const y = randomF32(rows, 5);
    const t = quantizeLoraTRef(Float32Array.from({ length: rank }, (_, i) => (i % 2 ? 1 : -1)), b.rPad);
    const want = loraBQ8AccRef(b, t, y, 0.5);
    const zeroT = quantizeLoraTRef(new Float32Array(rank), b.rPad);
    for (const core of cores) {
      const got = wasmBAcc(core, b, t, y, 0.5);
      expect(normwise(got, want), core.build).toBeLessThanOrEqual(1e-6);
      expect(got[2]).toBe(y[2]);
      expect(got[8]).toBe(y[8]);
      expect(Array.from(wasmBAcc(core, b, zeroT, y, 0.5))).toEqual(Array.from(y));
    }
  });

  test("a row range starting anywhere inside B touches only its rows", () => {
    const rows = 50, rank = 16;
    const b = packLoraB(randomF32(rows * rank, 8, 0.1), rows, rank);
    const t = quantizeLoraTRef(randomF32(rank, 9), b.rPad);
    const y = randomF32(rows, 10);
    const all = loraBQ8AccRef(b, t, y, 1.5);
    for (const core of cores) {
      const got = wasmBAcc(core, b, t, y, 1.5, 13, 22);
      for (let r = 0; r < rows; r++) {
        if (r < 13 || r >= 35) expect(got[r]).toBe(y[r]);
        else expect(Math.abs(got[r] - all[r])).toBeLessThanOrEqual(1e-6 * Math.max(...Array.from(all, Math.abs)));
      }
    }
  });
});

/** Blocks of quantized t for n tokens, tqStride bytes apart, as lora_quantize_t writes them. */
function putTs(core: Core, sc: { alloc(bytes: number): number }, ts: readonly { dt: number; q: Int8Array }[], rPad: number, tqStride: number): number {
  const tq = sc.alloc(ts.length * tqStride);
  ts.forEach((t, i) => {
    core.arena.f32(tq + i * tqStride, 1)[0] = t.dt;
    core.arena.u8(tq + i * tqStride + LORA_T_HEADER, rPad).set(Uint8Array.from(t.q, (v) => v + 64));
  });
  return tq;
}

/** Runs lora_b_q8_acc_batch over rows [r0, r0+nr) for every token of ts; y holds ts.length rows of yStride values. */
function wasmBAccBatch(core: Core, b: PackedLoraB, ts: readonly { dt: number; q: Int8Array }[], y: Float32Array, s: number, yStride: number, r0 = 0, nr = b.rows): Float32Array {
  return core.arena.scoped((sc) => {
    const tqStride = loraTBytes(b.rank) + 16; // a gap between tokens' blocks: the stride is honoured
    const bp = sc.put(b.q), mp = sc.put(loraBMeta(b)), yp = sc.put(y);
    const tq = putTs(core, sc, ts, b.rPad, tqStride);
    core.call("lora_b_q8_acc_batch", bp + r0 * b.rPad, mp + r0 * 8, tq, tqStride, yp + r0 * 4, nr, b.rPad, s, ts.length, yStride);
    return core.arena.f32(yp, y.length).slice();
  });
}

/** n calls of lora_b_q8_acc, one per token, over the same rows. */
function wasmBAccPerToken(core: Core, b: PackedLoraB, ts: readonly { dt: number; q: Int8Array }[], y: Float32Array, s: number, yStride: number, r0 = 0, nr = b.rows): Float32Array {
  return core.arena.scoped((sc) => {
    const bp = sc.put(b.q), mp = sc.put(loraBMeta(b)), yp = sc.put(y);
    const tq = putTs(core, sc, ts, b.rPad, loraTBytes(b.rank));
    ts.forEach((_, i) => core.call("lora_b_q8_acc", bp + r0 * b.rPad, mp + r0 * 8, tq + i * loraTBytes(b.rank), yp + (i * yStride + r0) * 4, nr, b.rPad, s));
    return core.arena.f32(yp, y.length).slice();
  });
}

describe("lora_b_q8_acc_batch: n tokens at once, bit for bit", () => {
  const cases: [number, number, number][] = [];
  for (const n of [1, 3, 5, 17]) for (const rank of [4, 16, 17]) cases.push([n, rank, 4 * rank + 3]);
  test.each(cases)("%i tokens, rank %i, %i rows", (n, rank, rows) => {
    const b = packLoraB(randomF32(rows * rank, rows + rank, 0.05), rows, rank);
    const ts = Array.from({ length: n }, (_, i) => quantizeLoraTRef(randomF32(rank, 100 + i, 1 + i), b.rPad));
    ts[n - 1] = quantizeLoraTRef(new Float32Array(rank), b.rPad); // a zero t leaves its token's y as it was
    const yStride = rows + 5;
    const y = randomF32(n * yStride, n + 3);
    const want = loraBQ8AccBatchRef(b, ts, y, 0.75, yStride);
    for (const core of cores) {
      const got = wasmBAccBatch(core, b, ts, y, 0.75, yStride);
      expect(sameBits(got, want), `${core.build} vs reference`).toBe(true);
      expect(sameBits(got, wasmBAccPerToken(core, b, ts, y, 0.75, yStride)), `${core.build} vs per-token kernel`).toBe(true);
      expect(Array.from(got.subarray((n - 1) * yStride, n * yStride))).toEqual(Array.from(y.subarray((n - 1) * yStride, n * yStride)));
      if (n > 1) expect(sameBits(got, y)).toBe(false);
    }
  });

  test("a row range inside B touches only its rows of every token; int8 and 7-bit limits", () => {
    const rows = 50, rank = 33, n = 6, yStride = 50;
    const bf = randomF32(rows * rank, 21, 0.1);
    bf.fill(1, 0, 20 * rank); // rows at +127
    const b = packLoraB(bf, rows, rank);
    const ts = Array.from({ length: n }, (_, i) => quantizeLoraTRef(i === 0 ? new Float32Array(rank).fill(-1) : randomF32(rank, 30 + i), b.rPad));
    const y = randomF32(n * yStride, 22);
    const all = loraBQ8AccBatchRef(b, ts, y, 1.5, yStride);
    for (const core of cores) {
      const got = wasmBAccBatch(core, b, ts, y, 1.5, yStride, 13, 22);
      for (let i = 0; i < n; i++) {
        for (let r = 0; r < rows; r++) {
          const at = i * yStride + r;
          expect(Object.is(got[at], r < 13 || r >= 35 ? y[at] : all[at]), `${core.build} token ${i} row ${r}`).toBe(true);
        }
      }
    }
  });
});

describe("the whole compact path", () => {
  test("y += s B (A x) stays close to the f32 product (rank 16, 512 columns)", () => {
    const rows = 96, cols = 512, rank = 16;
    const a = randomF32(rank * cols, 1, 0.05), b = randomF32(rows * rank, 2, 0.05), x = randomF32(cols, 3);
    const t = matVec(a, x, rank, cols);
    const exact = matVec(b, t, rows, rank).map((v) => 2 * v);
    for (const core of cores) {
      const p = uploadLoraQ8(core, a, b, rows, cols, rank);
      const got = loraQ8Apply(core, p, x, new Float32Array(rows), 2);
      // x and A in 8-bit blocks, t in 7 bits, B in 8 bits per row: about 1% of the largest value
      const err = normwise(got, exact);
      expect(err, core.build).toBeLessThanOrEqual(3e-2);
      expect(err, core.build).toBeGreaterThan(0);
      freeLoraQ8(core, p);
    }
  });
});
