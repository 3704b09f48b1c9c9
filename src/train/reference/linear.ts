// A frozen product with an optional LoRA pair, y = W x + scale B (A x), and its backward pass (dx through W and the pair; dA, dB only).
import type { LoraPair } from "./lora.js";
import { matmul, matmulBackwardInput, matmulBackwardWeight } from "./matmul.js";
import type { Mat } from "./weights.js";

/** y = W x (+ bias) + scale B (A x) for T rows; returns A x (T x rank) for the backward pass, or undefined without a pair. */
export function linear(y: Float64Array, x: Float64Array, w: Mat, T: number, pair?: LoraPair, bias?: Float64Array): Float64Array | undefined {
  matmul(y, x, w.w, T, w.cols, w.rows);
  if (bias) for (let t = 0; t < T; t++) for (let o = 0; o < w.rows; o++) y[t * w.rows + o] += bias[o];
  if (!pair) return undefined;
  const u = new Float64Array(T * pair.rank);
  matmul(u, x, pair.a, T, pair.nIn, pair.rank);
  const d = new Float64Array(T * pair.nOut);
  matmul(d, u, pair.b, T, pair.rank, pair.nOut);
  for (let i = 0; i < d.length; i++) y[i] += pair.scale * d[i];
  return u;
}

/**
 * dx += W^T dy + A^T (scale B^T dy); with a pair, grad.b += scale dy u^T and grad.a += (scale B^T dy) x^T.
 * The base weight gets no gradient: it is frozen.
 */
export function linearBackward(
  dx: Float64Array, dy: Float64Array, x: Float64Array, w: Mat, T: number,
  pair?: LoraPair, u?: Float64Array, grad?: { a: Float64Array; b: Float64Array },
): void {
  matmulBackwardInput(dx, dy, w.w, T, w.cols, w.rows);
  if (!pair) return;
  if (!u || !grad) throw new Error("linearBackward: a LoRA pair needs its forward's A x and a gradient");
  const sdy = dy.map((v) => v * pair.scale);
  matmulBackwardWeight(grad.b, sdy, u, T, pair.rank, pair.nOut);
  const du = new Float64Array(T * pair.rank);
  matmulBackwardInput(du, sdy, pair.b, T, pair.rank, pair.nOut);
  matmulBackwardWeight(grad.a, du, x, T, pair.nIn, pair.rank);
  matmulBackwardInput(dx, du, pair.a, T, pair.nIn, pair.rank);
}
