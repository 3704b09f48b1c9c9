// Batch products: each GEMM kernel against the scalar reference and, token by token, against its single-token GEMV kernel bit for bit.
import { beforeAll, describe, expect, test } from "vitest";
import { GgmlType, ggmlTypeById } from "../../src/gguf/ggml-types.js";
import { loadCore, Core, KERNELS, ACTIVATIONS, type ProductKernels } from "../../src/core/index.js";
import { gemmAccRef, gemmByRows, x8Values } from "../../src/core/reference/gemm.js";
import { f16ToF32, f32ToF16 } from "../../src/core/reference/half.js";
import { randomBlocks, randomF32, normwise, sameBits } from "./helpers.js";

let cores: Core[];
beforeAll(async () => {
  cores = [await loadCore({ build: "simd" }), await loadCore()];
});

const TOKENS = [1, 3, 4, 5, 17];

/** The batch kernels of the type table: per type, its product kernels that have a multi-row form. */
const BATCH: [number, ProductKernels][] = [...KERNELS].flatMap(([id, k]) => {
  const p = k.int8?.gemm ? k.int8 : k.float.gemm ? k.float : undefined;
  return p ? [[id, p] as [number, ProductKernels]] : [];
});

/** y rows are written with this stride (more than rows): the gaps must stay untouched. */
const PAD = 3;

interface Outcome {
  /** Batch results, n x rows. */
  batch: Float32Array;
  /** The single-token kernel's results per token, n x rows. */
  single: Float32Array;
  /** The x values the kernels effectively multiply with (8-bit x dequantized, or x rounded to f16 for F16 weights). */
  xUsed: Float32Array;
  padIntact: boolean;
}

/** Runs a batch kernel and the matching single-token kernel once per token on the same inputs. */
function runBoth(core: Core, id: number, k: ProductKernels, bytes: Uint8Array, rows: number, cols: number, x: Float32Array, n: number): Outcome {
  const act = ACTIVATIONS[k.x];
  const m = core.upload(id, bytes, rows, cols);
  try {
    return core.arena.scoped((s) => {
      const stride = rows + PAD;
      const xp = s.put(x);
      const yb = s.put(new Float32Array(n * stride).fill(NaN));
      const ys = s.alloc(n * rows * 4);
      let xUsed: Float32Array;
      if (act.eightBit) {
        const nb = cols / 32;
        const qx = s.alloc(n * cols), dx = s.alloc(n * nb * 4), xs = s.alloc(n * nb * 4);
        for (let t = 0; t < n; t++) core.call(act.kernel!, xp + t * cols * 4, cols, qx + t * cols, dx + t * nb * 4, xs + t * nb * 4);
        core.call(k.gemm!, m.ptr, qx, dx, xs, yb, rows, cols, n, stride);
        for (let t = 0; t < n; t++) core.call(k.gemv, m.ptr, qx + t * cols, dx + t * nb * 4, xs + t * nb * 4, ys + t * rows * 4, rows, cols);
        const q = core.arena.u8(qx, n * cols);
        xUsed = x8Values(new Int8Array(q.buffer, q.byteOffset, q.length).slice(), core.arena.f32(dx, n * nb).slice());
      } else {
        xUsed = act.ref(x);
        const xq = s.put(xUsed);
        core.call(k.gemm!, m.ptr, xq, yb, rows, cols, n, stride);
        for (let t = 0; t < n; t++) core.call(k.gemv, m.ptr, xq + t * cols * 4, ys + t * rows * 4, rows, cols);
      }
      const all = core.arena.f32(yb, n * stride).slice();
      const batch = new Float32Array(n * rows);
      let padIntact = true;
      for (let t = 0; t < n; t++) {
        batch.set(all.subarray(t * stride, t * stride + rows), t * rows);
        for (let j = rows; j < stride; j++) padIntact &&= Number.isNaN(all[t * stride + j]);
      }
      return { batch, single: core.arena.f32(ys, n * rows).slice(), xUsed, padIntact };
    });
  } finally {
    core.free(m);
  }
}

describe("GEMM per type", () => {
  for (const [id, k] of BATCH) {
    const t = ggmlTypeById(id)!;
    test(`${t.name}: n = ${TOKENS.join(", ")} tokens equal the single-token kernel bit for bit and the reference within 1e-6`, () => {
      const bs = t.blockSize;
      // tails everywhere: odd rows, blocks not a multiple of four per row, float rows not a multiple of 8 or 16
      const shapes: [number, number][] = bs === 1 ? [[19, 37], [5, 64]] : bs === 32 ? [[19, 7 * 32], [5, 8 * 32]] : [[19, 2 * bs], [3, bs]];
      for (const [rows, cols] of shapes) {
        const bytes = randomBlocks(t, (rows * cols) / bs, rows * 31 + cols + id, true);
        const dequant = KERNELS.get(id)!.ref.dequant;
        const rowBytes = (cols / bs) * t.typeSize;
        const row = (r: number) => dequant(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), cols);
        for (const n of TOKENS) {
          const x = randomF32(n * cols, n * 7 + cols);
          for (const core of cores) {
            const label = `${core.build} ${rows}x${cols} n ${n}`;
            const o = runBoth(core, id, k, bytes, rows, cols, x, n);
            expect(o.padIntact, label).toBe(true);
            expect(sameBits(o.batch, o.single), label).toBe(true);
            expect(normwise(o.batch, gemmByRows(row, o.xUsed, n, rows, cols)), label).toBeLessThanOrEqual(1e-6);
          }
        }
      }
    });
  }

  test("every type with 8-bit kernels has a batch kernel, and so has every repacked layout", () => {
    for (const [, k] of KERNELS) {
      if (k.int8) expect(k.int8.gemm, k.traits.name).toBeDefined();
      if (k.layout) expect(k.layout.int8.gemm, `${k.traits.name} ${k.layout.name}`).toBeDefined();
    }
  });

  test.each([[21, 16], [6, 37], [16, 768]])("gemm_f32 and gemm_f32_acc equal gemv_f32 and gemv_f32_acc per token (%i x %i)", (rows, cols) => {
    const w = randomF32(rows * cols, rows + cols), s = 0.625;
    for (const n of TOKENS) {
      const x = randomF32(n * cols, 5 + n), y0 = randomF32(n * rows, 6 + n);
      for (const core of cores) {
        const out = core.arena.scoped((sc) => {
          const wp = sc.put(w), xp = sc.put(x), yb = sc.alloc(n * rows * 4), ys = sc.alloc(n * rows * 4), ab = sc.put(y0), as = sc.put(y0);
          core.call("gemm_f32", wp, xp, yb, rows, cols, n, rows);
          core.call("gemm_f32_acc", wp, xp, ab, rows, cols, n, rows, s);
          for (let t = 0; t < n; t++) {
            core.call("gemv_f32", wp, xp + t * cols * 4, ys + t * rows * 4, rows, cols);
            core.call("gemv_f32_acc", wp, xp + t * cols * 4, as + t * rows * 4, rows, cols, s);
          }
          return [yb, ys, ab, as].map((p) => core.arena.f32(p, n * rows).slice());
        });
        expect(sameBits(out[0], out[1]), `${core.build} n ${n}`).toBe(true);
        expect(sameBits(out[2], out[3]), `${core.build} acc n ${n}`).toBe(true);
      }
    }
  });

  test("gemm_f32_acc adds s (X B^T) per token like gemv_f32_acc", () => {
    const rows = 21, r = 16, s = 0.75;
    const b = randomF32(rows * r, 1);
    for (const n of TOKENS) {
      const x = randomF32(n * r, 2 + n), y0 = randomF32(n * rows, 3 + n);
      for (const core of cores) {
        const [batch, single] = core.arena.scoped((sc) => {
          const bp = sc.put(b), xp = sc.put(x), yb = sc.put(y0), ys = sc.put(y0);
          core.call("gemm_f32_acc", bp, xp, yb, rows, r, n, rows, s);
          for (let t = 0; t < n; t++) core.call("gemv_f32_acc", bp, xp + t * r * 4, ys + t * rows * 4, rows, r, s);
          return [core.arena.f32(yb, n * rows).slice(), core.arena.f32(ys, n * rows).slice()];
        });
        expect(sameBits(batch, single), `${core.build} n ${n}`).toBe(true);
        expect(normwise(batch, gemmAccRef(b, x, y0.slice(), n, rows, r, s)), `${core.build} n ${n}`).toBeLessThanOrEqual(1e-6);
      }
    }
  });
});
