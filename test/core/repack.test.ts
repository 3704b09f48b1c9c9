// The grouped Q4_0 layout: in-place repack and the four-rows-per-pass kernel against their scalar references and the plain kernel.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GgmlType, ggmlTypeById } from "../../src/gguf/ggml-types.js";
import { loadCore, createPool, Core, KernelPool, KERNELS } from "../../src/core/index.js";
import type { Scope } from "../../src/core/arena.js";
import { packLoraB, loraBMeta, loraTBytes } from "../../src/core/lora-q8.js";
import { LORA_B_Q8, TERM_ENTRY_BYTES, writeTermEntry } from "../../src/core/lora-layout.js";
import { quantizeX8, type X8 } from "../../src/core/reference/quant.js";
import { repackQ4_0x4Ref, gemvQ4_0x4X8Ref } from "../../src/core/reference/repack.js";
import { randomBlocks, randomF32, sameBits } from "./helpers.js";

const Q4_0 = ggmlTypeById(GgmlType.Q4_0)!;
/** The grouped layout's kernels, from the type table. */
const LAYOUT = KERNELS.get(Q4_0.id)!.layout!;
const GEMV_Q4_0X4 = LAYOUT.int8.gemv, GEMV_Q4_0X4_LORA = LAYOUT.int8.gemvLora!;
let cores: Core[];
let pool: KernelPool;
beforeAll(async () => {
  cores = [await loadCore({ build: "simd" }), await loadCore()];
  pool = await createPool({ threads: 3, maxBytes: 256 << 20, minParallelBytes: 0 });
});
afterAll(() => pool?.dispose());

/** rows x cols: one group, groups plus 1..3 plain rows, block counts with and without a remainder of 4. */
const SHAPES: [number, number][] = [[4, 32], [5, 96], [7, 128], [8, 160], [17, 512], [23, 768], [3, 256]];

/** How the core's build splits an int8 nibble dot into partial sums. */
const lanesOf = (core: Core) => (core.build.includes("relaxed") ? "relaxed" : "simd") as "relaxed" | "simd";

const weights = (rows: number, cols: number, seed: number) => randomBlocks(Q4_0, (rows * cols) / 32, seed, seed % 2 === 0);

/** Tokens' 8-bit x put into a scope row after row: qx (int8), dx and block sums (f32), as the batch kernels read them. */
function putX8(core: Core, s: Scope, xs8: readonly X8[], cols: number): { qx: number; dx: number; xsum: number } {
  const n = xs8.length, nb = cols / 32;
  const qx = s.alloc(n * cols), dx = s.alloc(n * nb * 4), xsum = s.alloc(n * nb * 4);
  xs8.forEach((v, i) => {
    core.arena.u8(qx + i * cols, cols).set(new Uint8Array(v.qx.buffer, v.qx.byteOffset, cols));
    core.arena.f32(dx + i * nb * 4, nb).set(v.dx);
    core.arena.f32(xsum + i * nb * 4, nb).set(v.xs);
  });
  return { qx, dx, xsum };
}

/** Runs one raw 8-bit-x kernel call on core memory; returns y. */
function runKernel(core: Core, fn: string, w: number, x: Float32Array, rows: number, cols: number): Float32Array {
  const { qx, dx, xs } = quantizeX8(x);
  return core.arena.scoped((s) => {
    const y = s.alloc(rows * 4);
    core.call(fn, w, s.put(qx), s.put(dx), s.put(xs), y, rows, cols);
    return core.arena.f32(y, rows).slice();
  });
}

describe("batches of tokens over the grouped layout", () => {
  test("unpacking each group gives the plain rows back, and the batch kernel equals the plain batch kernel bit for bit", () => {
    const n = 5;
    for (const [rows, cols] of SHAPES) {
      const bytes = weights(rows, cols, rows * 3 + cols);
      const xs8 = Array.from({ length: n }, (_, i) => quantizeX8(randomF32(cols, cols * 7 + rows + i)));
      const nb = cols / 32, rowBytes = nb * 18;
      for (const core of cores) {
        const plain = core.upload(Q4_0.id, bytes, rows, cols);
        const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
        const out = core.arena.scoped((s) => {
          const { qx, dx, xsum } = putX8(core, s, xs8, cols);
          const y1 = s.alloc(n * rows * 4), y2 = s.alloc(n * rows * 4), scratch = s.alloc(4 * rowBytes), unpacked = s.alloc(4 * rowBytes);
          core.call("gemm_q4_0_q8", plain.ptr, qx, dx, xsum, y1, rows, cols, n, rows);
          core.call("gemm_q4_0x4_q8", m.ptr, qx, dx, xsum, y2, rows, cols, n, rows, scratch);
          for (let r = 0; r + 4 <= rows; r += 4) {
            core.call("unpack_q4_0x4_group", m.ptr + r * rowBytes, unpacked, cols);
            expect(Buffer.compare(core.arena.u8(unpacked, 4 * rowBytes), bytes.subarray(r * rowBytes, (r + 4) * rowBytes)), `${core.build} group ${r}`).toBe(0);
          }
          return { want: core.arena.f32(y1, n * rows).slice(), got: core.arena.f32(y2, n * rows).slice() };
        });
        expect(sameBits(out.got, out.want), `${core.build} ${rows}x${cols}`).toBe(true);
        expect(out.got.some((v) => v !== 0)).toBe(true);
        core.free(plain);
        core.free(m);
      }
    }
  });
});

describe("the grouped batch kernel against the scalar reference", () => {
  test("every token of 1 to 9 equals the scalar reference of the grouped layout, bit for bit, with strided y left intact between rows", () => {
    for (const [rows, cols] of [[8, 128], [17, 512], [23, 768], [12, 2048], [9, 96]] as [number, number][]) {
      const bytes = weights(rows, cols, rows * 5 + cols);
      const packed = repackQ4_0x4Ref(bytes, rows, cols);
      const nb = cols / 32, stride = rows + 3;
      for (const n of [1, 2, 3, 4, 5, 8, 9]) {
        const xs8 = Array.from({ length: n }, (_, i) => quantizeX8(randomF32(cols, cols * 11 + rows + i * 31)));
        for (const core of cores) {
          const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
          const got = core.arena.scoped((s) => {
            const { qx, dx, xsum } = putX8(core, s, xs8, cols);
            const y = s.put(new Float32Array(n * stride).fill(NaN)), scratch = s.alloc(Math.max(512, 4 * nb * 18));
            core.call(LAYOUT.int8.gemm!, m.ptr, qx, dx, xsum, y, rows, cols, n, stride, scratch);
            return core.arena.f32(y, n * stride).slice();
          });
          for (let t = 0; t < n; t++) {
            const want = gemvQ4_0x4X8Ref(packed, xs8[t].qx, xs8[t].dx, xs8[t].xs, rows, cols, lanesOf(core));
            const label = `${core.build} ${rows}x${cols} n ${n} token ${t}`;
            expect(sameBits(got.subarray(t * stride, t * stride + rows), want), label).toBe(true);
            expect(got.subarray(t * stride + rows, (t + 1) * stride).every((v) => Number.isNaN(v)), label).toBe(true);
          }
          core.free(m);
        }
      }
    }
  });
});

describe("Q4_0 grouped by four rows", () => {
  test("the in-place wasm repack equals the scalar reference byte for byte", () => {
    for (const [rows, cols] of SHAPES) {
      const bytes = weights(rows, cols, rows * 7 + cols);
      for (const core of cores) {
        const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
        expect(m.layout, `${rows}x${cols}`).toBe(rows >= 4 ? "q4_0x4" : undefined);
        expect(Buffer.compare(core.arena.u8(m.ptr, bytes.length), repackQ4_0x4Ref(bytes, rows, cols)), `${core.build} ${rows}x${cols}`).toBe(0);
        core.free(m);
      }
    }
  });

  test("the kernel equals its scalar reference and the plain kernel bit for bit", () => {
    for (const [rows, cols] of SHAPES) {
      const bytes = weights(rows, cols, rows * 13 + cols);
      const x = randomF32(cols, cols + rows);
      const { qx, dx, xs } = quantizeX8(x);
      const packed = repackQ4_0x4Ref(bytes, rows, cols);
      for (const core of cores) {
        const want = gemvQ4_0x4X8Ref(packed, qx, dx, xs, rows, cols, lanesOf(core));
        const plain = core.upload(Q4_0.id, bytes, rows, cols);
        const old = runKernel(core, "gemv_q4_0_q8", plain.ptr, x, rows, cols);
        const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
        const got = runKernel(core, GEMV_Q4_0X4, m.ptr, x, rows, cols);
        const label = `${core.build} ${rows}x${cols}`;
        expect(sameBits(got, want), label).toBe(true);
        expect(sameBits(got, old), label).toBe(true);
        core.free(plain);
        core.free(m);
      }
    }
  });

  test("16-bit partial sums stay exact with every nibble and every x at its extreme", () => {
    const rows = 8, cols = 224;
    const base = weights(rows, cols, 5);
    for (const fill of [0x00, 0xff, 0x0f, 0xf0]) {
      const bytes = base.slice();
      for (let o = 0; o < bytes.length; o++) if (o % 18 >= 2) bytes[o] = fill;
      for (const sign of [1, -1]) {
        const x = new Float32Array(cols).fill(sign);
        const { qx, dx, xs } = quantizeX8(x);
        for (const core of cores) {
          const want = gemvQ4_0x4X8Ref(repackQ4_0x4Ref(bytes, rows, cols), qx, dx, xs, rows, cols, lanesOf(core));
          const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
          expect(sameBits(runKernel(core, GEMV_Q4_0X4, m.ptr, x, rows, cols), want), `${core.build} fill ${fill} x ${sign}`).toBe(true);
          core.free(m);
        }
      }
    }
  });

  test("Core.gemv on a repacked matrix equals the plain matrix, on one thread and split over the pool", () => {
    const rows = 70, cols = 512;
    const bytes = weights(rows, cols, 9);
    const x = randomF32(cols, 3);
    for (const core of [...cores, pool.core]) {
      const plain = core.upload(Q4_0.id, bytes, rows, cols);
      const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
      expect(sameBits(core.gemv(m, x), core.gemv(plain, x)), core.build).toBe(true);
      expect(() => core.gemv(m, x, { x8: false })).toThrow(/8-bit x/);
      core.free(plain);
      core.free(m);
    }
  });

  test("matrices with an Inf or NaN scale, other types and fewer than four rows keep the plain layout", () => {
    const core = cores[0];
    const bytes = weights(8, 64, 11);
    bytes[18 * 5 + 1] = 0x7c; // block 5's scale: Inf
    const m = core.upload(Q4_0.id, bytes, 8, 64);
    expect(core.canRepack(m)).toBe(false);
    expect(core.repack(m)).toBe(m);
    expect(Buffer.compare(core.arena.u8(m.ptr, bytes.length), bytes)).toBe(0);
    const q8 = core.upload(GgmlType.Q8_0, randomBlocks(ggmlTypeById(GgmlType.Q8_0)!, 8, 2), 4, 64);
    expect(core.repack(q8)).toBe(q8);
    const three = core.upload(Q4_0.id, weights(3, 64, 4), 3, 64);
    expect(core.repack(three)).toBe(three);
  });
});

describe("the grouped kernel with an adapter's B in its row pass", () => {
  /** y from the fused call and from the grouped kernel followed by the adapter's own B kernel, same inputs. */
  function fusedAndSeparate(core: Core, m: number, x: Float32Array, rows: number, cols: number, kind: "f32" | "q8", rank: number, seed: number) {
    const { qx, dx, xs } = quantizeX8(x);
    const s = 0.8125;
    return core.arena.scoped((sc) => {
      const q = sc.put(qx), d = sc.put(dx), xsum = sc.put(xs);
      const y1 = sc.alloc(rows * 4), y2 = sc.alloc(rows * 4);
      let bt: number[], rs: number[], sep: string;
      if (kind === "f32") {
        bt = [sc.put(randomF32(rows * rank, seed, 0.1)), sc.put(randomF32(rank, seed + 1))];
        rs = [rank, s];
        sep = "gemv_f32_acc";
      } else {
        const packed = packLoraB(randomF32(rows * rank, seed, 0.1), rows, rank);
        const tq = sc.alloc(loraTBytes(rank));
        core.call("lora_quantize_t", sc.put(randomF32(rank, seed + 1)), rank, packed.rPad, tq);
        bt = [sc.put(packed.q), sc.put(loraBMeta(packed)), tq];
        rs = [packed.rPad, s];
        sep = "lora_b_q8_acc";
      }
      core.call(GEMV_Q4_0X4_LORA[kind], m, q, d, xsum, y1, rows, cols, ...bt, ...rs);
      core.call(GEMV_Q4_0X4, m, q, d, xsum, y2, rows, cols);
      core.call(sep, ...bt, y2, rows, ...rs);
      return { fused: core.arena.f32(y1, rows).slice(), separate: core.arena.f32(y2, rows).slice() };
    });
  }

  test.each(["f32", "q8"] as const)("%s B: the same bits as the two calls, over groups, plain rows left over and ranks 8, 16, 20, 32", (kind) => {
    for (const [rows, cols] of SHAPES) {
      const bytes = weights(rows, cols, rows * 5 + cols);
      const x = randomF32(cols, cols + rows);
      for (const core of cores) {
        const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
        for (const rank of [8, 16, 20, 32]) {
          const { fused, separate } = fusedAndSeparate(core, m.ptr, x, rows, cols, kind, rank, rows + rank);
          expect(sameBits(fused, separate), `${core.build} ${rows}x${cols} rank ${rank}`).toBe(true);
          // the adapter changed the result: the test compares more than the base
          expect(sameBits(fused, runKernel(core, GEMV_Q4_0X4, m.ptr, x, rows, cols))).toBe(false);
        }
        core.free(m);
      }
    }
  });
});

describe("the grouped batch kernel with each token's adapter B in its group pass", () => {
  /**
   * n tokens, token i on term i mod 3 (none, f32 B, int8 B; each term with its own B, t and scale): y from the
   * fused batch call and from the batch kernel followed by each token's own B kernel, same inputs.
   */
  function fusedAndSeparate(core: Core, m: number, rows: number, cols: number, n: number, rank: number, seed: number) {
    const nb = cols / 32, stride = rows + 2;
    const xs8 = Array.from({ length: n }, (_, i) => quantizeX8(randomF32(cols, seed + i * 17)));
    return core.arena.scoped((sc) => {
      const { qx, dx, xsum } = putX8(core, sc, xs8, cols);
      const y1 = sc.put(new Float32Array(n * stride).fill(NaN)), y2 = sc.put(new Float32Array(n * stride).fill(NaN));
      const scratch = sc.alloc(Math.max(512, 4 * nb * 18));
      const table = sc.alloc(n * TERM_ENTRY_BYTES);
      const view = new DataView(core.memory.buffer);
      const separate: (() => void)[] = [];
      for (let i = 0; i < n; i++) {
        const s = 0.8125 + i / 8, yi = y2 + i * stride * 4;
        if (i % 3 === 0) writeTermEntry(view, table, i, undefined);
        else if (i % 3 === 1) {
          const b = sc.put(randomF32(rows * rank, seed + 100 * i, 0.1)), t = sc.put(randomF32(rank, seed + 100 * i + 1));
          writeTermEntry(view, table, i, { kind: "f32", b, t, rank, scale: s });
          separate.push(() => core.call("gemm_f32_acc", b, t, yi, rows, rank, 1, rows, s));
        } else {
          const packed = packLoraB(randomF32(rows * rank, seed + 100 * i, 0.1), rows, rank);
          const tq = sc.alloc(loraTBytes(rank));
          core.call("lora_quantize_t", sc.put(randomF32(rank, seed + 100 * i + 1)), rank, packed.rPad, tq);
          const b = sc.put(packed.q), meta = sc.put(loraBMeta(packed));
          writeTermEntry(view, table, i, { kind: "q8", b, meta, t: tq, rPad: packed.rPad, scale: s });
          separate.push(() => core.call(LORA_B_Q8, b, meta, tq, 0, yi, rows, packed.rPad, s, 1, 0));
        }
      }
      core.call(LAYOUT.int8.gemmLora!, m, qx, dx, xsum, y1, rows, cols, n, stride, scratch, table);
      core.call(LAYOUT.int8.gemm!, m, qx, dx, xsum, y2, rows, cols, n, stride, scratch);
      for (const f of separate) f();
      return { fused: core.arena.f32(y1, n * stride).slice(), separate: core.arena.f32(y2, n * stride).slice() };
    });
  }

  test("the same bits as the batch kernel then each token's B kernel: groups, plain rows left over, 1 to 9 tokens, ranks 8, 16, 20", () => {
    for (const [rows, cols] of [...SHAPES, [12, 2048]] as [number, number][]) {
      const bytes = weights(rows, cols, rows * 9 + cols);
      for (const core of cores) {
        const m = core.repack(core.upload(Q4_0.id, bytes, rows, cols));
        for (const n of [1, 2, 3, 4, 5, 8, 9]) for (const rank of [8, 16, 20]) {
          const { fused, separate } = fusedAndSeparate(core, m.ptr, rows, cols, n, rank, rows + cols + n + rank);
          const label = `${core.build} ${rows}x${cols} n ${n} rank ${rank}`;
          expect(sameBits(fused, separate), label).toBe(true);
          // rows past `rows` of each token's y stay untouched
          for (let t = 0; t < n; t++) expect(fused.subarray(t * (rows + 2) + rows, (t + 1) * (rows + 2)).every(Number.isNaN), label).toBe(true);
        }
        core.free(m);
      }
    }
  });
});
