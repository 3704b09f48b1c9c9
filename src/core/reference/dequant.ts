// Scalar reference dequantization of ggml block formats to f32, with f32 rounding after every operation as ggml does.
import { f16ToF32, bf16ToF32 } from "./half.js";

const fr = Math.fround;

function h(b: Uint8Array, o: number): number {
  return f16ToF32(b[o] | (b[o + 1] << 8));
}
function i8(v: number): number {
  return (v << 24) >> 24;
}

export function dequantF32(b: Uint8Array, n: number): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
}

export function dequantF16(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = h(b, 2 * i);
  return y;
}

export function dequantBF16(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = bf16ToF32(b[2 * i] | (b[2 * i + 1] << 8));
  return y;
}

export function dequantQ4_0(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const p = i * 18, d = h(b, p);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 2 + j];
      y[i * 32 + j] = fr(((q & 15) - 8) * d);
      y[i * 32 + j + 16] = fr(((q >> 4) - 8) * d);
    }
  }
  return y;
}

export function dequantQ4_1(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const p = i * 20, d = h(b, p), m = h(b, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[p + 4 + j];
      y[i * 32 + j] = fr(fr((q & 15) * d) + m);
      y[i * 32 + j + 16] = fr(fr((q >> 4) * d) + m);
    }
  }
  return y;
}

function q5(b: Uint8Array, n: number, withMin: boolean): Float32Array {
  const bytes = withMin ? 24 : 22;
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const p = i * bytes, d = h(b, p), m = withMin ? h(b, p + 2) : 0;
    const hp = p + (withMin ? 4 : 2);
    const qh = (b[hp] | (b[hp + 1] << 8) | (b[hp + 2] << 16) | (b[hp + 3] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = b[hp + 4 + j];
      const lo = (q & 15) | (((qh >>> j) & 1) << 4);
      const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      if (withMin) {
        y[i * 32 + j] = fr(fr(lo * d) + m);
        y[i * 32 + j + 16] = fr(fr(hi * d) + m);
      } else {
        y[i * 32 + j] = fr((lo - 16) * d);
        y[i * 32 + j + 16] = fr((hi - 16) * d);
      }
    }
  }
  return y;
}
export const dequantQ5_0 = (b: Uint8Array, n: number) => q5(b, n, false);
export const dequantQ5_1 = (b: Uint8Array, n: number) => q5(b, n, true);

export function dequantQ8_0(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const p = i * 34, d = h(b, p);
    for (let j = 0; j < 32; j++) y[i * 32 + j] = fr(i8(b[p + 2 + j]) * d);
  }
  return y;
}

/** 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at s. */
export function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

function k45(b: Uint8Array, n: number, five: boolean): Float32Array {
  const bytes = five ? 176 : 144;
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const p = i * bytes, d = h(b, p), dmin = h(b, p + 2);
    const qs = p + (five ? 48 : 16);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(b, p + 4, j);
      const dl = fr(d * sc), ml = fr(dmin * m);
      for (let l = 0; l < 32; l++) {
        const byte = b[qs + (j >> 1) * 32 + l];
        let q = j & 1 ? byte >> 4 : byte & 15;
        if (five && (b[p + 16 + l] >> j) & 1) q += 16;
        y[i * 256 + j * 32 + l] = fr(fr(dl * q) - ml);
      }
    }
  }
  return y;
}
export const dequantQ4_K = (b: Uint8Array, n: number) => k45(b, n, false);
export const dequantQ5_K = (b: Uint8Array, n: number) => k45(b, n, true);

export function dequantQ6_K(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const p = i * 210, d = h(b, p + 208);
    for (let e = 0; e < 256; e++) {
      const half = e >> 7, r = e & 127, part = r >> 5, l = r & 31;
      const ql = b[p + half * 64 + (part & 1) * 32 + l];
      const low = part < 2 ? ql & 15 : ql >> 4;
      const hi = (b[p + 128 + half * 32 + l] >> (2 * part)) & 3;
      const q = (low | (hi << 4)) - 32;
      const sc = i8(b[p + 192 + half * 8 + (l >> 4) + 2 * part]);
      y[i * 256 + e] = fr(fr(d * sc) * q);
    }
  }
  return y;
}

export function dequantQ2_K(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const p = i * 84, d = h(b, p + 80), dmin = h(b, p + 82);
    for (let e = 0; e < 256; e++) {
      const half = e >> 7, r = e & 127, j = r >> 5, l = r & 31;
      const sc = b[p + half * 8 + j * 2 + (l >> 4)];
      const q = (b[p + 16 + half * 32 + l] >> (2 * j)) & 3;
      y[i * 256 + e] = fr(fr(fr(d * (sc & 15)) * q) - fr(dmin * (sc >> 4)));
    }
  }
  return y;
}

export function dequantQ3_K(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const p = i * 110, d = h(b, p + 108);
    const sc = (k: number): number => {
      const low = k < 8 ? b[p + 96 + k] & 15 : b[p + 96 + k - 8] >> 4;
      const high = (b[p + 104 + (k & 3)] >> (2 * (k >> 2))) & 3;
      return (low | (high << 4)) - 32;
    };
    for (let e = 0; e < 256; e++) {
      const half = e >> 7, r = e & 127, j = r >> 5, l = r & 31;
      const q = (b[p + 32 + half * 32 + l] >> (2 * j)) & 3;
      const hbit = (b[p + l] >> (half * 4 + j)) & 1;
      const k = half * 8 + j * 2 + (l >> 4);
      y[i * 256 + e] = fr(fr(d * sc(k)) * (q - (hbit ? 0 : 4)));
    }
  }
  return y;
}

/** The IQ4 non-linear 4-bit codebook (a constant of the format). */
const IQ4 = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

export function dequantIQ4_NL(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 32; i++) {
    const p = i * 18, d = h(b, p);
    for (let j = 0; j < 16; j++) {
      y[i * 32 + j] = fr(d * IQ4[b[p + 2 + j] & 15]);
      y[i * 32 + j + 16] = fr(d * IQ4[b[p + 2 + j] >> 4]);
    }
  }
  return y;
}

export function dequantIQ4_XS(b: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  for (let i = 0; i < n / 256; i++) {
    const p = i * 136, d = h(b, p), sh = b[p + 2] | (b[p + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((b[p + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      for (let j = 0; j < 16; j++) {
        const q = b[p + 8 + ib * 16 + j];
        y[i * 256 + ib * 32 + j] = fr(dl * IQ4[q & 15]);
        y[i * 256 + ib * 32 + j + 16] = fr(dl * IQ4[q >> 4]);
      }
    }
  }
  return y;
}
