// Transposed products dX += dY W (the backward pass through frozen weights): each type's SIMD kernel against its scalar reference bit for bit, on one thread and split over the pool.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ggmlTypeById } from "../../src/gguf/ggml-types.js";
import { loadCore, createPool, Core, KernelPool, TRANSPOSED_KERNELS, gemmTransposed, transposedScratchBytes, type Matrix } from "../../src/core/index.js";
import { gemmTransposedRef } from "../../src/core/reference/transposed.js";
import { kernelsFor } from "../../src/core/kernels.js";
import { randomBlocks, randomF32, sameBits, normwise } from "./helpers.js";

let core: Core;
let pool: KernelPool;
beforeAll(async () => {
  core = await loadCore();
  pool = await createPool({ threads: 2, maxBytes: 64 << 20, minParallelBytes: 0 });
});
afterAll(() => pool.dispose());

/** Runs the kernel on `c` (through gemmTransposed) and returns dx. */
function run(c: Core, id: number, bytes: Uint8Array, rows: number, cols: number, dy: Float32Array, n: number, dx0: Float32Array, threads: number): Float32Array {
  const m: Matrix = c.upload(id, bytes, rows, cols);
  try {
    return c.arena.scoped((s) => {
      const dyp = s.put(dy), dxp = s.put(dx0);
      const scratch = Array.from({ length: threads }, () => s.alloc(transposedScratchBytes(cols)));
      gemmTransposed(c, m, dyp, rows, dxp, cols, n, scratch);
      return c.arena.f32(dxp, n * cols).slice();
    });
  } finally {
    c.free(m);
  }
}

// 13 rows: three groups of four and one row alone; 768 columns: three K-quant blocks; 5 rows of dY
const ROWS = 13, COLS = 768, N = 5;

describe("transposed products dX += dY W", () => {
  for (const [id, fn] of TRANSPOSED_KERNELS) {
    const t = ggmlTypeById(id)!;
    test(`${fn} (${t.name}): bit for bit the scalar reference, on one thread and on two`, () => {
      const bytes = randomBlocks(t, (ROWS * COLS) / t.blockSize, 11 + id, kernelsFor(id).ref.quantize !== undefined);
      const dy = randomF32(N * ROWS, 3 + id), dx0 = randomF32(N * COLS, 5 + id, 0.5);
      const want = gemmTransposedRef(id, bytes, ROWS, COLS, dy, N, dx0.slice());
      const one = run(core, id, bytes, ROWS, COLS, dy, N, dx0, 1);
      expect(sameBits(one, want)).toBe(true);
      const two = run(pool.core, id, bytes, ROWS, COLS, dy, N, dx0, 2);
      expect(sameBits(two, want)).toBe(true);
      // and it is the product it claims to be: against the f64 sum of the decoded weights (f32 rounding only)
      const w = kernelsFor(id).ref.dequant(bytes, ROWS * COLS);
      const exact = Float64Array.from(dx0);
      for (let r = 0; r < N; r++) for (let o = 0; o < ROWS; o++) for (let c = 0; c < COLS; c++) exact[r * COLS + c] += dy[r * ROWS + o] * w[o * COLS + c];
      expect(normwise(one, exact)).toBeLessThan(1e-6);
    });
  }

  for (const [id, fn] of TRANSPOSED_KERNELS) {
    const t = ggmlTypeById(id)!;
    test(`${fn} (${t.name}): a larger matrix (67 x 2560, 9 rows of dY) split over two threads, bit for bit`, () => {
      const rows = 67, cols = 2560, n = 9;
      const bytes = randomBlocks(t, (rows * cols) / t.blockSize, 21 + id, kernelsFor(id).ref.quantize !== undefined);
      const dy = randomF32(n * rows, 23 + id), dx0 = randomF32(n * cols, 25 + id, 0.5);
      const want = gemmTransposedRef(id, bytes, rows, cols, dy, n, dx0.slice());
      expect(sameBits(run(pool.core, id, bytes, rows, cols, dy, n, dx0, 2), want)).toBe(true);
    });
  }

  for (const [id, fn] of TRANSPOSED_KERNELS) {
    const t = ggmlTypeById(id)!;
    test(`${fn} (${t.name}): 71 rows of dY (three row tiles, an odd last) and 1280 columns (column tiles), one thread, two, and two with four ranges in the shared queue; 3 rows (split by columns)`, () => {
      const rows = 21, cols = 1280;
      const bytes = randomBlocks(t, (rows * cols) / t.blockSize, 31 + id, kernelsFor(id).ref.quantize !== undefined);
      for (const n of [71, 3]) {
        const dy = randomF32(n * rows, 33 + id + n), dx0 = randomF32(n * cols, 35 + id + n, 0.5);
        const want = gemmTransposedRef(id, bytes, rows, cols, dy, n, dx0.slice());
        expect(sameBits(run(core, id, bytes, rows, cols, dy, n, dx0, 1), want)).toBe(true);
        expect(sameBits(run(pool.core, id, bytes, rows, cols, dy, n, dx0, 2), want)).toBe(true);
        // four scratch blocks on two threads: ranges of rows through the pool's shared queue
        expect(sameBits(run(pool.core, id, bytes, rows, cols, dy, n, dx0, 4), want)).toBe(true);
      }
    });
  }

  test("a row count below four and a column count with a tail of 1..3 (F32)", () => {
    const id = 0, rows = 3, cols = 7, n = 2;
    const bytes = new Uint8Array(randomF32(rows * cols, 9).buffer);
    const dy = randomF32(n * rows, 1), dx0 = randomF32(n * cols, 2);
    expect(sameBits(run(core, id, bytes, rows, cols, dy, n, dx0, 1), gemmTransposedRef(id, bytes, rows, cols, dy, n, dx0.slice()))).toBe(true);
  });
});
