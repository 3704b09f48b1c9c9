// Scalar reference of the transposed products (assembly/transposed.ts): dX += dY W in f32, rows in groups of four, the same order bit for bit.
import { kernelsFor } from "../kernels.js";

/**
 * dx (n x cols) += dy (n x rows) W, W given as its rows' bytes of a ggml type. Each dx value becomes
 * dx + ((g0 w0 + g1 w1) + (g2 w2 + g3 w3)) per group of four rows, then dx + g w for the last rows % 4.
 */
export function gemmTransposedRef(typeId: number, bytes: Uint8Array, rows: number, cols: number, dy: Float32Array, n: number, dx: Float32Array): Float32Array {
  const w = kernelsFor(typeId).ref.dequant(bytes, rows * cols);
  const f = Math.fround;
  let o = 0;
  for (; o + 4 <= rows; o += 4) {
    for (let t = 0; t < n; t++) {
      const g0 = dy[t * rows + o], g1 = dy[t * rows + o + 1], g2 = dy[t * rows + o + 2], g3 = dy[t * rows + o + 3];
      for (let c = 0; c < cols; c++) {
        const a = f(f(g0 * w[o * cols + c]) + f(g1 * w[(o + 1) * cols + c]));
        const e = f(f(g2 * w[(o + 2) * cols + c]) + f(g3 * w[(o + 3) * cols + c]));
        dx[t * cols + c] = f(dx[t * cols + c] + f(a + e));
      }
    }
  }
  for (; o < rows; o++) {
    for (let t = 0; t < n; t++) {
      const g = dy[t * rows + o];
      for (let c = 0; c < cols; c++) dx[t * cols + c] = f(dx[t * cols + c] + f(g * w[o * cols + c]));
    }
  }
  return dx;
}
