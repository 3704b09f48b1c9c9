// Scalar reference low-rank and dense f32 math, in the same f32 operation order as the wasm kernels.
const fr = Math.fround;

/** y = M v for an f32 row-major M (rows x cols); sums in f64. */
export function matVec(m: Float32Array, v: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += m[r * cols + c] * v[c];
    y[r] = s;
  }
  return y;
}

/** W += s B A (W rows x cols, B rows x r, A r x cols), f32 accumulation over k in order. */
export function mergeRef(w: Float32Array, b: Float32Array, a: Float32Array, rows: number, cols: number, r: number, s: number): void {
  for (let o = 0; o < rows; o++) {
    for (let c = 0; c < cols; c++) {
      let v = w[o * cols + c];
      for (let k = 0; k < r; k++) v = fr(v + fr(fr(s * b[o * r + k]) * a[k * cols + c]));
      w[o * cols + c] = v;
    }
  }
}

/** C = A B (m x k times k x n), f32 accumulation over k in order. */
export function matmulRef(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let t = 0; t < k; t++) v = fr(v + fr(a[i * k + t] * b[t * n + j]));
      c[i * n + j] = v;
    }
  }
  return c;
}
