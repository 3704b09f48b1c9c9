// Scalar reference quantizers (F16, BF16, Q4_0, Q4_1, Q8_0 as ggml's reference) and the 8-bit x blocks of the GEMV paths.
import { f32ToF16, f32ToBf16, f16ToF32 } from "./half.js";

const fr = Math.fround;

function putF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  b[o] = h & 255;
  b[o + 1] = h >> 8;
}

export function quantizeF32(x: Float32Array): Uint8Array {
  return new Uint8Array(x.slice().buffer);
}

export function quantizeF16(x: Float32Array): Uint8Array {
  const b = new Uint8Array(x.length * 2);
  for (let i = 0; i < x.length; i++) putF16(b, 2 * i, x[i]);
  return b;
}

export function quantizeBF16(x: Float32Array): Uint8Array {
  const b = new Uint8Array(x.length * 2);
  for (let i = 0; i < x.length; i++) {
    const h = f32ToBf16(x[i]);
    b[2 * i] = h & 255;
    b[2 * i + 1] = h >> 8;
  }
  return b;
}

/** C's float-to-int8 conversion: truncation toward zero. */
const trunc8 = (v: number): number => (Math.trunc(v) << 24) >> 24;

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const b = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(b, i * 18, d);
    for (let j = 0; j < 16; j++) {
      const a = Math.min(15, trunc8(fr(fr(x[i * 32 + j] * id) + 8.5)));
      const c = Math.min(15, trunc8(fr(fr(x[i * 32 + 16 + j] * id) + 8.5)));
      b[i * 18 + 2 + j] = (a & 255) | (c << 4);
    }
  }
  return b;
}

export function quantizeQ4_1(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const b = new Uint8Array(nb * 20);
  for (let i = 0; i < nb; i++) {
    let mn = 3.4028234663852886e38, mx = -3.4028234663852886e38;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    const d = fr(fr(mx - mn) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(b, i * 20, d);
    putF16(b, i * 20 + 2, mn);
    for (let j = 0; j < 16; j++) {
      const a = Math.min(15, trunc8(fr(fr(fr(x[i * 32 + j] - mn) * id) + 0.5)));
      const c = Math.min(15, trunc8(fr(fr(fr(x[i * 32 + 16 + j] - mn) * id) + 0.5)));
      b[i * 20 + 4 + j] = (a & 255) | (c << 4);
    }
  }
  return b;
}

/** C's roundf: halfway cases away from zero. */
function roundAway(v: number): number {
  const t = Math.trunc(v);
  return Math.abs(v - t) >= 0.5 ? t + Math.sign(v) : t;
}

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const b = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(b, i * 34, d);
    for (let j = 0; j < 32; j++) b[i * 34 + 2 + j] = roundAway(fr(x[i * 32 + j] * id)) & 255;
  }
  return b;
}

/** x quantized to 8-bit blocks of 32 (the layout the integer GEMV kernels read). */
export interface X8 {
  qx: Int8Array;
  /** Per block scale. */
  dx: Float32Array;
  /** Per block scale times the sum of the block's int8 values. */
  xs: Float32Array;
}

/** Nearest integer, ties to even (the wasm `nearest`). */
function nearestEven(v: number): number {
  const f = Math.floor(v), r = v - f;
  return r > 0.5 ? f + 1 : r < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** Same rounding as the wasm quantize_x8 (nearest, ties to even). */
export function quantizeX8(x: Float32Array): X8 {
  const nb = x.length / 32;
  const qx = new Int8Array(x.length), dx = new Float32Array(nb), xs = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    let s = 0;
    for (let j = 0; j < 32; j++) {
      const q = nearestEven(fr(x[b * 32 + j] * id));
      qx[b * 32 + j] = q;
      s += q;
    }
    dx[b] = d;
    xs[b] = fr(d * s);
  }
  return { qx, dx, xs };
}

/** As the wasm quantize_x8_f16 (ggml's activations for Q4_0, Q4_1, Q8_0): scale kept in f16, q = nearest(x * 127/amax). */
export function quantizeX8F16(x: Float32Array): X8 {
  const nb = x.length / 32;
  const qx = new Int8Array(x.length), dx = new Float32Array(nb), xs = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = fr(amax / 127);
    const id = amax !== 0 ? fr(127 / amax) : 0;
    let s = 0;
    for (let j = 0; j < 32; j++) {
      const q = nearestEven(fr(x[b * 32 + j] * id));
      qx[b * 32 + j] = q;
      s += q;
    }
    const dh = f16ToF32(f32ToF16(d));
    dx[b] = dh;
    xs[b] = fr(dh * s);
  }
  return { qx, dx, xs };
}

/**
 * As the wasm quantize_x8_k (ggml's activations for K-quants): one f32 scale per 256 values from the value of
 * largest magnitude, written per 32 values (dx repeated, xs per 32-value sub-block).
 */
export function quantizeX8K(x: Float32Array): X8 {
  const nb = x.length / 256;
  const qx = new Int8Array(x.length), dx = new Float32Array(x.length / 32), xs = new Float32Array(x.length / 32);
  for (let b = 0; b < nb; b++) {
    let amax = 0, mx = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[b * 256 + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        mx = v;
      }
    }
    const iscale = amax !== 0 ? fr(-127 / mx) : 0;
    const d = amax !== 0 ? fr(1 / iscale) : 0;
    for (let s = 0; s < 8; s++) {
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const k = b * 256 + s * 32 + j;
        const q = Math.min(127, nearestEven(fr(iscale * x[k])));
        qx[k] = q;
        sum += q;
      }
      dx[b * 8 + s] = d;
      xs[b * 8 + s] = fr(d * sum);
    }
  }
  return { qx, dx, xs };
}

/** The values a product on 8-bit x effectively multiplies with: q * d per block of 32. */
export function x8Dequantized(v: X8): Float32Array {
  return Float32Array.from(v.qx, (q, i) => q * v.dx[i >> 5]);
}
