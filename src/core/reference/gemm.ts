// Scalar reference batch products: Y = X W^T for n tokens over dequantized rows (f64 sums), with f32 x or x in 8-bit blocks.

/** Y (n x rows, token-major) = X (n x cols) W^T with W given by a row dequantizer; sums in f64. */
export function gemmByRows(dequantRow: (r: number) => Float32Array, x: Float32Array, n: number, rows: number, cols: number): Float32Array {
  const y = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) {
    const w = dequantRow(r);
    for (let t = 0; t < n; t++) {
      let s = 0;
      for (let i = 0; i < cols; i++) s += w[i] * x[t * cols + i];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** The f32 tokens the 8-bit kernels effectively multiply with: qx[i] * dx[i / 32] per token (qx, dx token-major). */
export function x8Values(qx: Int8Array, dx: Float32Array): Float32Array {
  const x = new Float32Array(qx.length);
  for (let i = 0; i < qx.length; i++) x[i] = qx[i] * dx[i >> 5];
  return x;
}

/** Y += s (X B^T) per token for F32 B (rows x cols): the second half of a batch of low-rank products; sums in f64. */
export function gemmAccRef(b: Float32Array, x: Float32Array, y: Float32Array, n: number, rows: number, cols: number, s: number): Float32Array {
  const t = gemmByRows((r) => b.subarray(r * cols, (r + 1) * cols), x, n, rows, cols);
  for (let i = 0; i < y.length; i++) y[i] += s * t[i];
  return y;
}
