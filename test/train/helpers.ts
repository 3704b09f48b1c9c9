// Test helpers for the training reference: central finite differences and the normwise error max|a - b| / max|b|.
import { mulberry32 } from "../../src/random.js";

/** Uniform values in +-range from a seeded generator. */
export function randomArray(n: number, seed: number, range = 1): Float64Array {
  const r = mulberry32(seed);
  return Float64Array.from({ length: n }, () => (2 * r() - 1) * range);
}

/** Central difference (f(p + h e_i) - f(p - h e_i)) / 2h of a scalar function of `param`, for each index in `indices`. */
export function centralDifferences(f: () => number, param: Float64Array, indices: readonly number[], h: number): Float64Array {
  const out = new Float64Array(indices.length);
  indices.forEach((i, k) => {
    const p0 = param[i];
    param[i] = p0 + h;
    const up = f();
    param[i] = p0 - h;
    const down = f();
    param[i] = p0;
    out[k] = (up - down) / (2 * h);
  });
  return out;
}

/** max_i |a_i - b_i| / max_i |b_i| (b: the reference). */
export function normwiseError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  if (den === 0) throw new Error("reference is all zeros: the comparison would say nothing");
  return num / den;
}

/** `count` distinct indices below n, spread by a seeded generator (all of them when count >= n). */
export function sampleIndices(n: number, count: number, seed: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const r = mulberry32(seed);
  const set = new Set<number>();
  while (set.size < count) set.add(Math.floor(r() * n));
  return [...set].sort((x, y) => x - y);
}

/** The entries of `x` at `indices`. */
export function pick(x: Float64Array, indices: readonly number[]): Float64Array {
  return Float64Array.from(indices, (i) => x[i]);
}

/** sum_i x_i w_i: a scalar "loss" whose gradient with respect to x is w. */
export function dot(x: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * w[i];
  return s;
}
