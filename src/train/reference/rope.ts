// f64 rotary position embedding in llama.cpp's two orders (normal: pairs 2i, 2i+1; neox: pairs i, i + dims/2) and its backward pass.

export interface RopeParams {
  readonly nHeads: number;
  readonly headDim: number;
  /** Rotated dimensions per head (the first ropeDims of each head); the rest pass through. */
  readonly ropeDims: number;
  readonly base: number;
  /** 1 / the linear scaling factor. */
  readonly freqScale: number;
  readonly neox: boolean;
}

/** Rotates each pair by +angle (forward) or -angle (backward: the transpose of a rotation is its inverse). */
function rotate(x: Float64Array, T: number, positions: readonly number[], p: RopeParams, sign: 1 | -1): void {
  const half = p.ropeDims / 2;
  const width = p.nHeads * p.headDim;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < p.nHeads; h++) {
      const o = t * width + h * p.headDim;
      for (let i = 0; i < half; i++) {
        // theta_i = pos * freqScale * base^(-2i / ropeDims), as ggml's rope
        const theta = positions[t] * p.freqScale * Math.pow(p.base, (-2 * i) / p.ropeDims);
        const c = Math.cos(theta), s = sign * Math.sin(theta);
        const i0 = p.neox ? o + i : o + 2 * i;
        const i1 = p.neox ? o + i + half : o + 2 * i + 1;
        const x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
      }
    }
  }
}

/** Rotates T rows of nHeads heads in place; row t is at position positions[t]. */
export function rope(x: Float64Array, T: number, positions: readonly number[], p: RopeParams): void {
  rotate(x, T, positions, p, 1);
}

/** Turns the gradient with respect to the rotated rows into the gradient with respect to the rows before it, in place. */
export function ropeBackward(dx: Float64Array, T: number, positions: readonly number[], p: RopeParams): void {
  rotate(dx, T, positions, p, -1);
}
