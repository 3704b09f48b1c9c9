// Plain TypeScript f64 linear algebra for adapters: products, thin QR, symmetric eigen (Jacobi) and truncated SVD.
import { mulberry32 } from "../random.js";

/** C (m x n) = X (m x k) · Y (k x n), all row-major, f64. */
export function matmul(x: ArrayLike<number>, y: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const v = x[i * k + p];
      if (v === 0) continue;
      const yo = p * n;
      const co = i * n;
      for (let j = 0; j < n; j++) c[co + j] += v * y[yo + j];
    }
  }
  return c;
}

/** Transpose of X (m x n) -> (n x m). */
export function transpose(x: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = x[i * n + j];
  return t;
}

/** Thin QR of X (m x k, row-major) by modified Gram-Schmidt with one re-orthogonalisation; returns Q (m x k), R (k x k). */
export function thinQr(x: ArrayLike<number>, m: number, k: number): { q: Float64Array; r: Float64Array } {
  const q = Float64Array.from(x as ArrayLike<number>);
  const r = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    let n0 = 0;
    for (let i = 0; i < m; i++) n0 += q[i * k + j] * q[i * k + j];
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * k + p] * q[i * k + j];
        r[p * k + j] += dot;
        for (let i = 0; i < m; i++) q[i * k + j] -= dot * q[i * k + p];
      }
    }
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += q[i * k + j] * q[i * k + j];
    nrm = Math.sqrt(nrm);
    // A column that is (numerically) dependent on the earlier ones contributes nothing.
    if (nrm <= 1e-12 * Math.sqrt(n0) || nrm === 0) {
      for (let i = 0; i < m; i++) q[i * k + j] = 0;
      r[j * k + j] = 0;
      continue;
    }
    r[j * k + j] = nrm;
    for (let i = 0; i < m; i++) q[i * k + j] /= nrm;
  }
  return { q, r };
}

/** Eigen-decomposition of a symmetric k x k matrix (cyclic Jacobi): values descending, vectors as columns of V. */
export function symmetricEigen(g: ArrayLike<number>, k: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(g as ArrayLike<number>);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < k; i++) {
      diag += a[i * k + i] * a[i * k + i];
      for (let j = i + 1; j < k; j++) off += a[i * k + j] * a[i * k + j];
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = a[p * k + q];
        if (apq === 0) continue;
        const app = a[p * k + p];
        const aqq = a[q * k + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let i = 0; i < k; i++) {
          const aip = a[i * k + p];
          const aiq = a[i * k + q];
          a[i * k + p] = c * aip - s * aiq;
          a[i * k + q] = s * aip + c * aiq;
        }
        for (let i = 0; i < k; i++) {
          const api = a[p * k + i];
          const aqi = a[q * k + i];
          a[p * k + i] = c * api - s * aqi;
          a[q * k + i] = s * api + c * aqi;
        }
        for (let i = 0; i < k; i++) {
          const vip = v[i * k + p];
          const viq = v[i * k + q];
          v[i * k + p] = c * vip - s * viq;
          v[i * k + q] = s * vip + c * viq;
        }
      }
    }
  }
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => a[y * k + y] - a[x * k + x]);
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  order.forEach((src, dst) => {
    values[dst] = a[src * k + src];
    for (let i = 0; i < k; i++) vectors[i * k + dst] = v[i * k + src];
  });
  return { values, vectors };
}

/** A rank-R factorisation M ≈ B·A with B = U_R·Σ_R (m x R) and A = V_Rᵀ (R x n), as PEFT's SVD mixing stores it. */
export interface LowRank {
  b: Float32Array;
  a: Float32Array;
  rank: number;
  /** Singular values, descending (all that were computed). */
  sigma: Float64Array;
}

/** SVD of a small core C (k x k... any p x q with p, q small): returns U Σ (p x R) and Vᵀ (R x q). */
function smallSvd(c: Float64Array, p: number, q: number, rank: number): { us: Float64Array; vt: Float64Array; sigma: Float64Array } {
  const g = matmul(transpose(c, p, q), c, q, p, q); // q x q
  const { values, vectors } = symmetricEigen(g, q);
  const R = Math.min(rank, q);
  const vr = new Float64Array(q * R);
  for (let i = 0; i < q; i++) for (let j = 0; j < R; j++) vr[i * R + j] = vectors[i * q + j];
  const us = matmul(c, vr, p, q, R); // p x R
  const sigma = Float64Array.from(values, (x) => Math.sqrt(Math.max(0, x)));
  return { us, vt: transpose(vr, q, R), sigma };
}

/**
 * Truncated SVD of a product M = Bc (m x K) · Ac (K x n) without forming M: QR of both factors, SVD of the K x K core.
 * Exact up to rounding; used to re-factor a sum of LoRA deltas.
 */
export function lowRankSvd(bc: ArrayLike<number>, ac: ArrayLike<number>, m: number, n: number, K: number, rank: number): LowRank {
  const { q: qb, r: rb } = thinQr(bc, m, K);
  const { q: qa, r: ra } = thinQr(transpose(ac, K, n), n, K);
  const core = matmul(rb, transpose(ra, K, K), K, K, K);
  const R = Math.min(rank, K);
  const { us, vt, sigma } = smallSvd(core, K, K, R);
  const b = Float32Array.from(matmul(qb, us, m, K, R));
  const a = Float32Array.from(matmul(vt, transpose(qa, n, K), R, K, n));
  return pad({ b, a, rank: R, sigma }, m, n, rank);
}

/** Zero-pads a factorisation to the requested rank when the matrix had fewer dimensions. */
function pad(f: LowRank, m: number, n: number, rank: number): LowRank {
  if (f.rank === rank) return f;
  const b = new Float32Array(m * rank);
  const a = new Float32Array(rank * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < f.rank; j++) b[i * rank + j] = f.b[i * f.rank + j];
  a.set(f.a);
  return { b, a, rank, sigma: f.sigma };
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32), for the randomized range finder. */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
}

/** C (m x n) = X (m x k) · Y (k x n), row-major: the products of the randomized path can run on faster kernels. */
export type Matmul = (x: Float32Array, y: Float32Array, m: number, k: number, n: number) => Float32Array;

/** The default product: f64 accumulation, rounded to f32. */
export const tsMatmul: Matmul = (x, y, m, k, n) => Float32Array.from(matmul(x, y, m, k, n));

/** Largest min(m, n) for which the dense Gram-matrix path is used; larger matrices use a randomized range finder. */
export const DENSE_SVD_LIMIT = 256;

/**
 * Truncated SVD of a dense M (m x n, row-major): rank-R factors B = U_R Σ_R, A = V_Rᵀ.
 * Small matrices: eigen-decomposition of the smaller Gram matrix (exact). Larger: subspace iteration
 * (R + 16 columns, 4 power iterations) then the same on the projected matrix.
 */
export function truncatedSvd(mat: ArrayLike<number>, m: number, n: number, rank: number, powerIterations = 4, mm?: Matmul): LowRank {
  const R = Math.min(rank, m, n);
  if (Math.min(m, n) <= DENSE_SVD_LIMIT) {
    // SVD via the range of M: QR of Mᵀ would be costlier; use M = I·M with the small side's Gram matrix.
    if (n <= m) {
      const { us, vt, sigma } = smallSvd(Float64Array.from(mat), m, n, R);
      return pad({ b: Float32Array.from(us), a: Float32Array.from(vt), rank: R, sigma }, m, n, rank);
    }
    const t = smallSvd(transpose(mat, m, n), n, m, R); // Mᵀ = (U'Σ) V'ᵀ, so M = V' (U'Σ)ᵀ
    const sig = t.sigma;
    // B = V' Σ (m x R), A = U'ᵀ (R x n): columns of t.us are U'_j σ_j.
    const b = new Float32Array(m * R);
    const a = new Float32Array(R * n);
    for (let j = 0; j < R; j++) {
      const s = sig[j];
      for (let i = 0; i < m; i++) b[i * R + j] = t.vt[j * m + i] * s;
      for (let i = 0; i < n; i++) a[j * n + i] = s > 0 ? t.us[i * R + j] / s : 0;
    }
    return pad({ b, a, rank: R, sigma: sig }, m, n, rank);
  }
  // The four large products go through `mm` (f32 in, f32 out); orthonormalisation and the small SVD stay in f64.
  const prod = mm ?? tsMatmul;
  const m32 = mat instanceof Float32Array ? mat : Float32Array.from(mat);
  const mt32 = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) mt32[j * m + i] = m32[i * n + j];
  const k = Math.min(R + 16, m, n);
  const rand = rng(0x5eed);
  const omega = new Float32Array(n * k);
  for (let i = 0; i < omega.length; i++) omega[i] = rand();
  let q = thinQr(prod(m32, omega, m, n, k), m, k).q;
  for (let it = 0; it < powerIterations; it++) {
    const z = thinQr(prod(mt32, Float32Array.from(q), n, m, k), n, k).q;
    q = thinQr(prod(m32, Float32Array.from(z), m, n, k), m, k).q;
  }
  const s = prod(Float32Array.from(transpose(q, m, k)), m32, k, m, n); // k x n, k < n
  const inner = truncatedSvd(s, k, n, R, 0);
  const b = Float32Array.from(matmul(q, inner.b, m, k, R));
  return pad({ b, a: inner.a, rank: R, sigma: inner.sigma }, m, n, rank);
}
