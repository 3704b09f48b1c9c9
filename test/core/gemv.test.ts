// Products: GEMV per type against the scalar reference, fused adapters, low-rank math, threads, chunked streaming.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GgmlType, ggmlTypeById } from "../../src/gguf/ggml-types.js";
import { openGguf } from "../../src/gguf/reader.js";
import { loadCore, createPool, Core, KERNELS, ACTIVATIONS, KernelPool, gemvStreamed, tensorRows, dequantizeStreamed, uploadTensor, gemvTensor } from "../../src/core/index.js";
import { gemvByRows, gemvQ4_0Plain, gemvF32Ordered } from "../../src/core/reference/gemv.js";
import { matVec, mergeRef, matmulRef } from "../../src/core/reference/lowrank.js";
import { randomBlocks, randomF32, normwise, sameBits, F16_FIELDS } from "./helpers.js";
import { fixture } from "../fixtures.js";

let cores: Core[];
let pool: KernelPool;
beforeAll(async () => {
  cores = [await loadCore({ build: "simd" }), await loadCore()];
  pool = await createPool({ threads: 3, maxBytes: 256 << 20, minParallelBytes: 0 });
});
afterAll(() => pool?.dispose());

/** Reference y = W x (or, with `abs`, the sums of |w x| that bound f32 rounding). */
function refGemv(id: number, bytes: Uint8Array, rows: number, cols: number, x: Float32Array, abs = false): Float32Array {
  const k = KERNELS.get(id)!;
  const rowBytes = (cols / k.traits.blockSize) * k.traits.typeSize;
  const row = (r: number) => k.ref.dequant(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), cols);
  if (!abs) return gemvByRows(row, x, rows);
  return gemvByRows((r) => row(r).map(Math.abs), x.map(Math.abs), rows);
}

describe("GEMV per type against the scalar reference (normwise <= 1e-6)", () => {
  /** Normwise error for several rows; for a single row (one value) the f32 error bound 1e-6 * sum|w x| instead. */
  function check(got: Float32Array, want: Float32Array, absSums: Float32Array, label: string): void {
    if (want.length >= 3) expect(normwise(got, want), label).toBeLessThanOrEqual(1e-6);
    else for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), label).toBeLessThanOrEqual(1e-6 * absSums[i]);
  }
  for (const [id, k] of KERNELS) {
    test(k.traits.name, () => {
      const bs = k.traits.blockSize;
      // one block per row, one row of several blocks, odd rows
      const shapes: [number, number][] = bs === 1 ? [[3, 1], [1, 37], [17, 512]] : [[3, bs], [1, 3 * bs], [17, Math.max(512, 2 * bs)]];
      for (const [rows, cols] of shapes) {
        const bytes = randomBlocks(k.traits, (rows * cols) / bs, rows * 31 + cols + id, true);
        const x = randomF32(cols, cols + 5);
        // the x the kernels effectively multiply with: the table's activation form of each product kind
        const want = refGemv(id, bytes, rows, cols, ACTIVATIONS[k.float.x].ref(x));
        const abs = refGemv(id, bytes, rows, cols, x, true);
        const wantX8 = k.int8 ? refGemv(id, bytes, rows, cols, ACTIVATIONS[k.int8.x].ref(x)) : undefined;
        for (const core of cores) {
          const m = core.upload(id, bytes, rows, cols);
          check(core.gemv(m, x, { x8: false }), want, abs, `${core.build} f32 x ${rows}x${cols}`);
          if (wantX8) check(core.gemv(m, x, { x8: true }), wantX8, abs, `${core.build} x8 ${rows}x${cols}`);
          core.free(m);
        }
      }
    });
  }

  test("x8 kernels stay exact with every weight byte and every x at its extreme (16-bit partial sums)", () => {
    const rows = 3, cols = 512;
    for (const [id, k] of KERNELS) {
      if (!k.int8) continue;
      const t = k.traits;
      // every byte but the f16 scales set to one value: nibbles and 6-bit values at 0 or their maximum, int8 at -128/127
      const scaleBytes = new Set((F16_FIELDS[t.name] ?? []).flatMap((f) => [f, f + 1]));
      const base = randomBlocks(t, (rows * cols) / t.blockSize, 77 + id);
      for (const fill of [0x00, 0xff, 0x80, 0x7f]) {
        const bytes = base.slice();
        for (let o = 0; o < bytes.length; o++) if (!scaleBytes.has(o % t.typeSize)) bytes[o] = fill;
        for (const sign of [1, -1]) {
          const x = new Float32Array(cols).fill(sign);
          const want = refGemv(id, bytes, rows, cols, ACTIVATIONS[k.int8.x].ref(x));
          for (const core of cores) {
            const m = core.upload(id, bytes, rows, cols);
            expect(normwise(core.gemv(m, x, { x8: true }), want), `${t.name} ${core.build} fill ${fill} x ${sign}`).toBeLessThanOrEqual(1e-6);
            core.free(m);
          }
        }
      }
    }
  });

  test("plain TypeScript Q4_0 loop agrees with the reference", () => {
    const rows = 5, cols = 256;
    const bytes = randomBlocks(ggmlTypeById(GgmlType.Q4_0)!, (rows * cols) / 32, 3, true);
    const x = randomF32(cols, 4);
    expect(normwise(gemvQ4_0Plain(bytes, x, rows, cols), refGemv(GgmlType.Q4_0, bytes, rows, cols, x))).toBeLessThanOrEqual(1e-6);
  });

  test("shape errors are reported", () => {
    const core = cores[0];
    const m = core.upload(GgmlType.Q4_0, new Uint8Array(18 * 2), 2, 32);
    expect(() => core.gemv(m, new Float32Array(31))).toThrow(/31 values/);
    expect(() => core.upload(GgmlType.Q4_0, new Uint8Array(17), 1, 32)).toThrow(/expected 18 bytes/);
    expect(() => core.dequantize(GgmlType.Q4_0, new Uint8Array(18), 31)).toThrow(/block size/);
    core.free(m);
  });
});

describe("F32 GEMV, four rows per pass, against its ordered scalar reference (bit for bit)", () => {
  // rows not a multiple of 4 and columns not a multiple of 8 take the one-row pass and the one-by-one tail
  const shapes: [number, number][] = [[1, 1], [3, 7], [4, 8], [5, 16], [16, 768], [7, 37], [9, 13], [768, 16], [6, 2048]];
  test.each(shapes)("%i x %i", (rows, cols) => {
    const w = randomF32(rows * cols, rows + 7 * cols), x = randomF32(cols, cols + 1), y0 = randomF32(rows, rows + 2);
    const want = gemvF32Ordered(w, x, rows, cols), wantAcc = gemvF32Ordered(w, x, rows, cols, { y: y0, s: 0.375 });
    for (const core of cores) {
      const [got, gotAcc] = core.arena.scoped((sc) => {
        const wp = sc.put(w), xp = sc.put(x), yp = sc.alloc(rows * 4), ap = sc.put(y0);
        core.call("gemv_f32", wp, xp, yp, rows, cols);
        core.call("gemv_f32_acc", wp, xp, ap, rows, cols, 0.375);
        return [core.arena.f32(yp, rows).slice(), core.arena.f32(ap, rows).slice()];
      });
      expect(sameBits(got, want), `${core.build} y = W x`).toBe(true);
      expect(sameBits(gotAcc, wantAcc), `${core.build} y += s W x`).toBe(true);
    }
  });
});

describe("fused adapter GEMV", () => {
  for (const id of [GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.F16]) {
    test(`${ggmlTypeById(id)!.name}: W x + sum s B (A x) equals GEMV plus separate low-rank products`, () => {
      const rows = 45, cols = 512;
      const t = ggmlTypeById(id)!;
      const bytes = randomBlocks(t, (rows * cols) / t.blockSize, 11, true);
      const x = randomF32(cols, 12);
      const ranks = [4, 16];
      const As = ranks.map((r, i) => randomF32(r * cols, 20 + i, 0.1));
      const Bs = ranks.map((r, i) => randomF32(rows * r, 30 + i, 0.1));
      const scales = [0.5, 2];
      for (const core of [...cores, pool.core]) {
        const m = core.upload(id, bytes, rows, cols);
        const pairs = ranks.map((r, i) => ({ a: core.uploadF32(As[i], r, cols), b: core.uploadF32(Bs[i], rows, r), scale: scales[i] }));
        const fused = core.gemvAdapted(m, x, pairs);
        const sep = core.gemv(m, x);
        pairs.forEach((p) => core.lowRankB(p.b, core.lowRankA(p.a, x), sep, p.scale));
        expect(sameBits(fused, sep), core.build).toBe(true);
        // and against an f64 scalar reference
        const want = x8EffectiveRef(id, bytes, rows, cols, x);
        ranks.forEach((r, i) => {
          const tt = matVec(As[i], x, r, cols);
          const bt = matVec(Bs[i], tt, rows, r);
          for (let o = 0; o < rows; o++) want[o] += scales[i] * bt[o];
        });
        expect(normwise(fused, want), core.build).toBeLessThanOrEqual(1e-6);
        pairs.forEach((p) => (core.free(p.a), core.free(p.b)));
        core.free(m);
      }
    });
  }
});

function x8EffectiveRef(id: number, bytes: Uint8Array, rows: number, cols: number, x: Float32Array): Float32Array {
  const k = KERNELS.get(id)!;
  return refGemv(id, bytes, rows, cols, ACTIVATIONS[(k.int8 ?? k.float).x].ref(x));
}

describe("low-rank and dense f32 math", () => {
  test("merge W += s B A equals the reference bit for bit (odd widths)", () => {
    for (const [rows, cols, r] of [[7, 37, 3], [33, 256, 16], [1, 16, 1]]) {
      const w = randomF32(rows * cols, 1), b = randomF32(rows * r, 2), a = randomF32(r * cols, 3);
      const want = w.slice();
      mergeRef(want, b, a, rows, cols, r, 0.75);
      for (const core of cores) expect(sameBits(core.merge(w.slice(), b, a, rows, cols, r, 0.75), want), core.build).toBe(true);
    }
  });

  test("blocked matmul equals the reference bit for bit", () => {
    for (const [m, k, n] of [[5, 300, 37], [16, 130, 520], [1, 1, 1]]) {
      const a = randomF32(m * k, 4), b = randomF32(k * n, 5);
      const want = matmulRef(a, b, m, k, n);
      for (const core of cores) expect(sameBits(core.matmul(a, b, m, k, n), want), core.build).toBe(true);
    }
  });
});

describe("threads", () => {
  test("pool splits rows across workers and matches one thread", () => {
    expect(pool.threads).toBe(3);
    const single = cores.find((c) => (pool.core.build === "threads-relaxed" ? c.build === "relaxed" : c.build === "simd"))!;
    for (const id of [GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q8_0, GgmlType.F32]) {
      const t = ggmlTypeById(id)!;
      const rows = 301, cols = 512;
      const bytes = randomBlocks(t, (rows * cols) / t.blockSize, id, true);
      const x = randomF32(cols, 9);
      const a = single.upload(id, bytes, rows, cols), b = pool.core.upload(id, bytes, rows, cols);
      for (const x8 of [true, false]) {
        expect(sameBits(pool.core.gemv(b, x, { x8 }), single.gemv(a, x, { x8 })), `${t.name} x8=${x8}`).toBe(true);
      }
      single.free(a);
      pool.core.free(b);
    }
  });

  test("many rows of x: a polling pool converts x in row ranges and splits the product, and matches one thread", async () => {
    const polling = await createPool({ threads: 2, maxBytes: 64 << 20, minParallelBytes: 0, spinPolls: 20000 });
    expect(polling.polls).toBe(true);
    const single = cores.find((c) => (polling.core.build === "threads-relaxed" ? c.build === "relaxed" : c.build === "simd"))!;
    for (const id of [GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q8_0, GgmlType.F16]) {
      const t = ggmlTypeById(id)!;
      // 63 rows of 768: enough values for the conversion of x to be shared out
      const rows = 301, cols = 768, n = 63;
      const bytes = randomBlocks(t, (rows * cols) / t.blockSize, 20 + id, true);
      const x = randomF32(n * cols, 21);
      const a = single.upload(id, bytes, rows, cols), b = polling.core.upload(id, bytes, rows, cols);
      for (const x8 of [true, false]) {
        expect(sameBits(polling.core.gemm(b, x, n, { x8 }), single.gemm(a, x, n, { x8 })), `${t.name} x8=${x8}`).toBe(true);
      }
      single.free(a);
      polling.core.free(b);
    }
    polling.dispose();
  });

  test("a disposed pool leaves its core on one thread", async () => {
    const p = await createPool({ threads: 2, maxBytes: 64 << 20, minParallelBytes: 0 });
    const m = p.core.uploadF32(randomF32(64 * 32, 1), 64, 32);
    const x = randomF32(32, 2);
    const before = p.core.gemv(m, x);
    p.dispose();
    expect(sameBits(p.core.gemv(m, x), before)).toBe(true);
    expect(() => p.run([[]])).toThrow(/disposed/);
  });
});

describe("streaming rows in chunks", () => {
  test("chunked GEMV equals the whole-matrix GEMV (chunk limit not a multiple of a row)", () => {
    const core = cores[1];
    const t = ggmlTypeById(GgmlType.Q4_K)!;
    const rows = 37, cols = 512;
    const bytes = randomBlocks(t, (rows * cols) / 256, 5);
    const x = randomF32(cols, 6);
    const m = core.upload(t.id, bytes, rows, cols);
    const whole = core.gemv(m, x);
    core.free(m);
    const rowBytes = (cols / 256) * 144;
    let reads = 0;
    const src = { type: t, rows, cols, read: (s: number, n: number) => (reads++, bytes.slice(s, s + n)) };
    const chunked = gemvStreamed(core, src, x, { maxChunkBytes: rowBytes * 5 + 7 });
    expect(reads).toBe(Math.ceil(rows / 5));
    expect(sameBits(chunked, whole)).toBe(true);
    expect(sameBits(gemvStreamed(core, src, x, { maxChunkBytes: 1 }), whole)).toBe(true);
  });

  test("a GGUF tensor streamed through the reader equals the tensor read whole", () => {
    const core = cores[1];
    using file = openGguf(fixture("quant/ggml-quant-goldens-256x32.gguf"));
    for (const name of ["q4_0.quant", "q6_K.quant", "q5_1.quant"]) {
      const t = file.tensor(name)!;
      const x = randomF32(t.ne[0], 8);
      const m = uploadTensor(core, file, t);
      const whole = core.gemv(m, x);
      core.free(m);
      expect(sameBits(gemvStreamed(core, tensorRows(file, t), x, { maxChunkBytes: t.rowBytes * 3 }), whole), name).toBe(true);
      expect(sameBits(gemvTensor(core, file, t, x, { maxChunkBytes: t.rowBytes * 4 }), whole), `${name} auto-streamed`).toBe(true);
      expect(sameBits(gemvTensor(core, file, t, x), whole), `${name} resident`).toBe(true);
      expect(sameBits(dequantizeStreamed(core, tensorRows(file, t), t.rowBytes * 7), core.dequantize(t.type.id, file.readTensor(t))), name).toBe(true);
    }
  });
});
