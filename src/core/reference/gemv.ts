// Scalar reference products: y = W x over dequantized rows (f64 sums), and a plain fused Q4_0 loop for the benchmark.
import { f16ToF32 } from "./half.js";

/** y = W x with W given by a row dequantizer; sums in f64. */
export function gemvByRows(dequantRow: (r: number) => Float32Array, x: Float32Array, rows: number): Float32Array {
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const w = dequantRow(r);
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i] * x[i];
    y[r] = s;
  }
  return y;
}

/** Q4_0 y = W x written as a plain TypeScript loop over the packed bytes (the "plain TS" baseline). */
export function gemvQ4_0Plain(w: Uint8Array, x: Float32Array, rows: number, cols: number, y = new Float32Array(rows)): Float32Array {
  const nb = cols >> 5;
  for (let r = 0; r < rows; r++) {
    let p = r * nb * 18;
    let acc = 0;
    for (let b = 0; b < nb; b++) {
      const d = f16ToF32(w[p] | (w[p + 1] << 8));
      const xo = b * 32;
      let s = 0;
      for (let j = 0; j < 16; j++) {
        const q = w[p + 2 + j];
        s += ((q & 15) - 8) * x[xo + j] + ((q >> 4) - 8) * x[xo + j + 16];
      }
      acc += s * d;
      p += 18;
    }
    y[r] = acc;
  }
  return y;
}

/**
 * y = W x for f32 W in the order of the wasm F32 kernels, bit for bit (with `acc`: y[r] + s * (W x)[r]):
 * lanes l of columns 8i+l summed in a[l] and of 8i+4+l in b[l], each product and sum rounded to f32, then
 * v = a + b, the row total (v0 + v1) + (v2 + v3), then the columns after the last multiple of 8 one by one.
 */
export function gemvF32Ordered(w: Float32Array, x: Float32Array, rows: number, cols: number, acc?: { y: Float32Array; s: number }): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(rows);
  const main = cols & ~7;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const a = [0, 0, 0, 0], b = [0, 0, 0, 0];
    for (let i = 0; i < main; i += 8) {
      for (let l = 0; l < 4; l++) {
        a[l] = f(a[l] + f(w[o + i + l] * x[i + l]));
        b[l] = f(b[l] + f(w[o + i + 4 + l] * x[i + 4 + l]));
      }
    }
    const v = a.map((al, l) => f(al + b[l]));
    let sum = f(f(v[0] + v[1]) + f(v[2] + v[3]));
    for (let i = main; i < cols; i++) sum = f(sum + f(w[o + i] * x[i]));
    out[r] = acc ? f(acc.y[r] + f(f(acc.s) * sum)) : sum;
  }
  return out;
}
