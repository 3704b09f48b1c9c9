// f64 SwiGLU (h = silu(g) * u, silu(g) = g / (1 + e^-g)) and its backward pass.

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function swiglu(h: Float64Array, g: Float64Array, u: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
}

/** dg += dh u silu'(g) and du += dh silu(g), with silu'(g) = s (1 + g (1 - s)), s = sigmoid(g). */
export function swigluBackward(dg: Float64Array, du: Float64Array, dh: Float64Array, g: Float64Array, u: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = sigmoid(g[i]);
    dg[i] += dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] += dh[i] * g[i] * s;
  }
}
