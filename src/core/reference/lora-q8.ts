// Scalar references for the compact adapter kernels: t to 7-bit integers with one scale, and y += s B t over packed int8 rows of B.
import { roundEven, type PackedLoraB } from "../lora-q8.js";

const fr = Math.fround;

/** t quantized as lora_quantize_t does: dt = max|t| / 63 (f32), q = nearest(t / dt) in [-63, 63], zero past t.length. */
export function quantizeLoraTRef(t: Float32Array, rPad: number): { dt: number; q: Int8Array } {
  let amax = 0;
  for (const v of t) amax = Math.max(amax, Math.abs(v));
  const dt = fr(amax / 63);
  const id = dt !== 0 ? fr(1 / dt) : 0;
  const q = new Int8Array(rPad);
  for (let i = 0; i < t.length; i++) q[i] = Math.min(63, Math.max(-63, roundEven(fr(t[i] * id))));
  return { dt, q };
}

/** y[i] + s * dt * dB[i] * (Bq[i] . q), integer dots, the rest in f64 (the kernel rounds to f32). */
export function loraBQ8AccRef(b: PackedLoraB, t: { dt: number; q: Int8Array }, y: Float32Array, s: number): Float64Array {
  const out = new Float64Array(b.rows);
  for (let r = 0; r < b.rows; r++) {
    let d = 0;
    for (let k = 0; k < b.rPad; k++) d += b.q[r * b.rPad + k] * t.q[k];
    out[r] = y[r] + s * t.dt * b.scales[r] * d;
  }
  return out;
}

/**
 * lora_b_q8_acc_batch in f32 steps, bit for bit: token i's row r of y (at i * yStride + r) becomes
 * y + d * (dB * (s * dt_i)), each step rounded to f32, d the exact integer dot of B's row with t_i.
 */
export function loraBQ8AccBatchRef(b: PackedLoraB, ts: readonly { dt: number; q: Int8Array }[], y: Float32Array, s: number, yStride: number): Float32Array {
  const out = y.slice();
  for (const [i, t] of ts.entries()) {
    const sd = fr(fr(s) * t.dt);
    for (let r = 0; r < b.rows; r++) {
      let d = 0;
      for (let k = 0; k < b.rPad; k++) d += b.q[r * b.rPad + k] * t.q[k];
      const at = i * yStride + r;
      out[at] = fr(out[at] + fr(fr(d) * fr(b.scales[r] * sd)));
    }
  }
  return out;
}
