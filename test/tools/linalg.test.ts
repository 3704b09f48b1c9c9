// Truncated SVD paths (dense Gram, randomized with TypeScript or wasm products, low-rank QR) against a matrix with known singular values.
import { describe, expect, it } from "vitest";
import { DENSE_SVD_LIMIT, lowRankSvd, matmul, thinQr, truncatedSvd } from "../../src/tools/linalg.js";
import { tensorMath } from "../../src/tools/tensor-math.js";
import { rng } from "./helpers.js";

/** M = U diag(σ) Vᵀ with random orthonormal U (m x k), V (n x k). */
function known(m: number, n: number, sigma: number[], seed: number): { mat: Float64Array; u: Float64Array; v: Float64Array } {
  const r = rng(seed);
  const k = sigma.length;
  const u = thinQr(Float64Array.from({ length: m * k }, r), m, k).q;
  const v = thinQr(Float64Array.from({ length: n * k }, r), n, k).q;
  const us = u.map((x, i) => x * sigma[i % k]);
  const vt = new Float64Array(k * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) vt[j * n + i] = v[i * k + j];
  return { mat: matmul(us, vt, m, k, n), u, v };
}

function relErr(b: ArrayLike<number>, a: ArrayLike<number>, mat: ArrayLike<number>, m: number, n: number, r: number): number {
  const p = matmul(b, a, m, r, n);
  let num = 0, den = 0;
  for (let i = 0; i < p.length; i++) { num += (p[i] - mat[i]) ** 2; den += mat[i] ** 2; }
  return Math.sqrt(num / den);
}

const SIGMA = [10, 8, 6, 4, 2, 1, 0.5, 0.25, 0.1, 0.05];
const tail = (r: number) => Math.sqrt(SIGMA.slice(r).reduce((s, x) => s + x * x, 0) / SIGMA.reduce((s, x) => s + x * x, 0));

describe("truncated SVD", () => {
  it("dense path: singular values and the Eckart-Young error", () => {
    for (const [m, n] of [[120, 80], [80, 120]]) {
      const { mat } = known(m, n, SIGMA, m);
      const f = truncatedSvd(mat, m, n, 4);
      expect([...f.sigma.slice(0, 4)].map((x) => +x.toFixed(6))).toEqual([10, 8, 6, 4]);
      expect(relErr(f.b, f.a, mat, m, n, 4)).toBeCloseTo(tail(4), 5);
      // B = U Σ, A = Vᵀ: the rows of A are orthonormal.
      const aat = matmul(f.a, Array.from({ length: n * 4 }, (_, i) => f.a[(i % 4) * n + Math.floor(i / 4)]), 4, n, 4);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(aat[i * 4 + j]).toBeCloseTo(i === j ? 1 : 0, 5);
    }
  });

  it("randomized path (min dimension above the dense limit), with TypeScript and with wasm products", async () => {
    const m = DENSE_SVD_LIMIT + 44, n = 400;
    const { mat } = known(m, n, SIGMA, 9);
    for (const engine of ["ts", "wasm"] as const) {
      const math = await tensorMath(engine);
      const f = truncatedSvd(Float32Array.from(mat), m, n, 6, 4, math.matmul);
      for (let i = 0; i < 6; i++) expect(f.sigma[i] / SIGMA[i], engine).toBeCloseTo(1, 4);
      expect(relErr(f.b, f.a, mat, m, n, 6) / tail(6), engine).toBeCloseTo(1, 3);
    }
  });

  it("low-rank path: a product B·A is re-factored exactly without forming it", () => {
    const m = 90, n = 70, K = 10;
    const { u, v } = known(m, n, SIGMA, 3);
    const b = u.map((x, i) => x * SIGMA[i % K]);
    const a = new Float64Array(K * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < K; j++) a[j * n + i] = v[i * K + j];
    const f = lowRankSvd(b, a, m, n, K, 3);
    expect([...f.sigma.slice(0, 3)].map((x) => +x.toFixed(6))).toEqual([10, 8, 6]);
    expect(relErr(f.b, f.a, matmul(b, a, m, K, n), m, n, 3)).toBeCloseTo(tail(3), 5);
  });
});
