// f64 RMSNorm as llama.cpp computes it (y = w * x / sqrt(mean(x^2) + eps), per row) and its backward pass.

/** Normalizes T rows of n values; returns each row's 1 / rms, which the backward pass needs. */
export function rmsnorm(y: Float64Array, x: Float64Array, w: Float64Array, T: number, n: number, eps: number): Float64Array {
  const inv = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / n + eps);
    inv[t] = r;
    for (let i = 0; i < n; i++) y[o + i] = w[i] * x[o + i] * r;
  }
  return inv;
}

/**
 * dx += the gradient through the norm (w frozen): with g = w * dy and r = 1 / rms,
 * dx = r g - x r^3 (x . g) / n.
 */
export function rmsnormBackward(dx: Float64Array, dy: Float64Array, x: Float64Array, w: Float64Array, inv: Float64Array, T: number, n: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n, r = inv[t];
    let dot = 0;
    for (let i = 0; i < n; i++) dot += x[o + i] * w[i] * dy[o + i];
    const c = (r * r * r * dot) / n;
    for (let i = 0; i < n; i++) dx[o + i] += r * w[i] * dy[o + i] - c * x[o + i];
  }
}
