// Scalar reference products: y = W x over dequantized rows (f64 sums), and a plain fused Q4_0 loop for the benchmark.
import { f16ToF32 } from "./half.js";
import { quantizeX8 } from "./quant.js";

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

/** The f32 vector the integer GEMV paths effectively multiply with: x rounded to 8-bit blocks. */
export function x8Effective(x: Float32Array): Float32Array {
  const { qx, dx } = quantizeX8(x);
  const e = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) e[i] = qx[i] * dx[i >> 5];
  return e;
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
