// Scalar references for the grouped Q4_0 layout: the repack and the four-rows-per-pass 8-bit-x product, in the kernel's float order.
import { f16ToF32 } from "./half.js";

const fr = Math.fround;

/** Q4_0 rows (rows x cols) in the grouped layout of assembly/gemv-x4.ts; rows after the last group of four unchanged. */
export function repackQ4_0x4Ref(src: Uint8Array, rows: number, cols: number): Uint8Array {
  const nb = cols / 32, rowBytes = nb * 18;
  const out = src.slice(0, rows * rowBytes);
  for (let r = 0; r + 4 <= rows; r += 4) {
    const base = r * rowBytes;
    for (let b = 0; b < nb; b++) {
      const o = base + b * 72;
      for (let k = 0; k < 4; k++) {
        const s = base + k * rowBytes + b * 18;
        out[o + 2 * k] = src[s];
        out[o + 2 * k + 1] = src[s + 1];
        // bytes 4j..4j+3 of row k go to lane j of vector m = (k - j) mod 4
        for (let j = 0; j < 4; j++) for (let t = 0; t < 4; t++) out[o + 8 + 16 * ((k - j + 4) % 4) + 4 * j + t] = src[s + 2 + 4 * j + t];
      }
    }
  }
  return out;
}

/** Row r's 16 packed bytes of block b: from its group entry in the grouped layout, or its plain block after the last group. */
function rowBlock(w: Uint8Array, r: number, b: number, rows: number, nb: number): { d: number; q: Uint8Array } {
  const rowBytes = nb * 18, full = rows - (rows % 4);
  const q = new Uint8Array(16);
  let o: number;
  if (r < full) {
    const k = r % 4, e = (r - k) * rowBytes + b * 72;
    o = e + 2 * k;
    // bytes 4j..4j+3 of row k are lane j of vector (k - j) mod 4
    for (let j = 0; j < 4; j++) for (let t = 0; t < 4; t++) q[4 * j + t] = w[e + 8 + 16 * ((k - j + 4) % 4) + 4 * j + t];
  } else {
    o = r * rowBytes + b * 18;
    q.set(w.subarray(o + 2, o + 18));
  }
  return { d: f16ToF32(w[o] | (w[o + 1] << 8)), q };
}

/** How a build's 32-value nibble dot splits into four partial sums: lane of packed byte j (0..15). */
export type DotLanes = "relaxed" | "simd";
const laneOf = (lanes: DotLanes, j: number) => (lanes === "relaxed" ? j >> 2 : (j & 7) >> 1);

/**
 * y = W x for W in the grouped layout and x in 8-bit blocks (qx, dx, xs as the kernels take them), with
 * gemv_q4_0_q8's f32 operations per row: block b < 4 * floor(nb / 4) goes to lane b mod 4 as one exact
 * integer dot (acc += t * (d * dx), corr += d * xs); each later block adds its four partial dots (split as
 * the build's int8 dot splits them, `lanes`) to the four lanes; then (l0 + l1) + (l2 + l3) - 8 * corr.
 */
export function gemvQ4_0x4X8Ref(w: Uint8Array, qx: Int8Array, dx: Float32Array, xs: Float32Array, rows: number, cols: number, lanes: DotLanes): Float32Array {
  const nb = cols / 32, main = nb - (nb % 4);
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const acc = [0, 0, 0, 0], corr = [0, 0, 0, 0];
    for (let b = 0; b < main; b++) {
      const { d, q } = rowBlock(w, r, b, rows, nb);
      let t = 0;
      for (let j = 0; j < 16; j++) t += (q[j] & 15) * qx[32 * b + j] + (q[j] >> 4) * qx[32 * b + 16 + j];
      acc[b % 4] = fr(acc[b % 4] + fr(t * fr(d * dx[b])));
      corr[b % 4] = fr(corr[b % 4] + fr(d * xs[b]));
    }
    let c = fr(fr(corr[0] + corr[1]) + fr(corr[2] + corr[3]));
    for (let b = main; b < nb; b++) {
      const { d, q } = rowBlock(w, r, b, rows, nb);
      const part = [0, 0, 0, 0];
      for (let j = 0; j < 16; j++) part[laneOf(lanes, j)] += (q[j] & 15) * qx[32 * b + j] + (q[j] >> 4) * qx[32 * b + 16 + j];
      const s = fr(d * dx[b]);
      for (let l = 0; l < 4; l++) acc[l] = fr(acc[l] + fr(part[l] * s));
      c = fr(c + fr(d * xs[b]));
    }
    y[r] = fr(fr(fr(acc[0] + acc[1]) + fr(acc[2] + acc[3])) - fr(8 * c));
  }
  return y;
}
