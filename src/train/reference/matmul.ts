// f64 products of row-major matrices over a sequence of rows: y = W x per row, and the two transposed products of its backward pass.

/** y[t, o] = sum_i w[o, i] x[t, i] for T rows; W is nOut x nIn, row-major (a GGUF tensor with ne [nIn, nOut]). */
export function matmul(y: Float64Array, x: Float64Array, w: Float64Array, T: number, nIn: number, nOut: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * nIn, yo = t * nOut;
    for (let o = 0; o < nOut; o++) {
      const wo = o * nIn;
      let s = 0;
      for (let i = 0; i < nIn; i++) s += w[wo + i] * x[xo + i];
      y[yo + o] = s;
    }
  }
}

/** dx[t, i] += sum_o w[o, i] dy[t, o]: the gradient through a product to its input (W transposed). */
export function matmulBackwardInput(dx: Float64Array, dy: Float64Array, w: Float64Array, T: number, nIn: number, nOut: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * nIn, yo = t * nOut;
    for (let o = 0; o < nOut; o++) {
      const g = dy[yo + o];
      if (g === 0) continue;
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) dx[xo + i] += w[wo + i] * g;
    }
  }
}

/** dw[o, i] += sum_t dy[t, o] x[t, i]: the gradient of a product's weight (summed over the rows). */
export function matmulBackwardWeight(dw: Float64Array, dy: Float64Array, x: Float64Array, T: number, nIn: number, nOut: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * nIn, yo = t * nOut;
    for (let o = 0; o < nOut; o++) {
      const g = dy[yo + o];
      if (g === 0) continue;
      const wo = o * nIn;
      for (let i = 0; i < nIn; i++) dw[wo + i] += g * x[xo + i];
    }
  }
}
