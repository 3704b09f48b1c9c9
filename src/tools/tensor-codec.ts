// Plain TypeScript conversion between ggml tensor bytes (F32, F16, BF16, Q8_0, Q4_0) and Float32Array.
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits to a number (exact). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A number to IEEE half bits, rounding to nearest even (as ggml's converter does). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++;
  return sign | r;
}

function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Types this module can both decode and encode. */
export const CODEC_TYPES: readonly number[] = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0];

export function canCode(type: number | GgmlTypeTraits): boolean {
  return CODEC_TYPES.includes(typeof type === "number" ? type : type.id);
}

function traits(type: number | GgmlTypeTraits): GgmlTypeTraits {
  const t = typeof type === "number" ? ggmlTypeById(type) : type;
  if (!t) throw new TypeError(`unknown ggml type ${String(type)}`);
  return t;
}

/** Decodes `n` values of a ggml type to f32. Throws TypeError for types this module cannot decode. */
export function decodeToF32(bytes: Uint8Array, type: number | GgmlTypeTraits, n: number): Float32Array {
  const t = traits(type);
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (t.id) {
    case GgmlType.F32:
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < n; i++) out[i] = bf16ToFloat(dv.getUint16(i * 2, true));
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < n / 32; b++) {
        const base = b * 34;
        const d = halfToFloat(dv.getUint16(base, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = dv.getInt8(base + 2 + j) * d;
      }
      return out;
    case GgmlType.Q4_0:
      for (let b = 0; b < n / 32; b++) {
        const base = b * 18;
        const d = halfToFloat(dv.getUint16(base, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[base + 2 + j];
          out[b * 32 + j] = ((q & 15) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    default:
      throw new TypeError(`cannot decode ggml type ${t.name} (supported: F32, F16, BF16, Q8_0, Q4_0)`);
  }
}

/** Encodes f32 values as a ggml type (Q8_0/Q4_0 with ggml's reference rounding). */
export function encodeFromF32(x: Float32Array, type: number | GgmlTypeTraits): Uint8Array {
  const t = traits(type);
  const n = x.length;
  if (n % t.blockSize !== 0) throw new TypeError(`${n} values are not a multiple of ${t.name}'s block size ${t.blockSize}`);
  const out = new Uint8Array((n / t.blockSize) * t.typeSize);
  const dv = new DataView(out.buffer);
  switch (t.id) {
    case GgmlType.F32:
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, x[i], true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToHalf(x[i]), true);
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, floatToBf16(x[i]), true);
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < n / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
        f32[0] = amax / 127;
        const d = f32[0];
        f32[0] = d ? 1 / d : 0;
        const id = f32[0];
        dv.setUint16(b * 34, floatToHalf(d), true);
        for (let j = 0; j < 32; j++) {
          f32[0] = x[b * 32 + j] * id;
          dv.setInt8(b * 34 + 2 + j, roundHalfAway(f32[0]));
        }
      }
      return out;
    case GgmlType.Q4_0:
      for (let b = 0; b < n / 32; b++) {
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
          const v = x[b * 32 + j];
          if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
        }
        f32[0] = max / -8;
        const d = f32[0];
        f32[0] = d ? 1 / d : 0;
        const id = f32[0];
        dv.setUint16(b * 18, floatToHalf(d), true);
        for (let j = 0; j < 16; j++) {
          f32[0] = x[b * 32 + j] * id;
          const x0 = f32[0];
          f32[0] = x[b * 32 + j + 16] * id;
          const x1 = f32[0];
          f32[0] = x0 + 8.5;
          const q0 = Math.min(15, Math.trunc(f32[0]));
          f32[0] = x1 + 8.5;
          const q1 = Math.min(15, Math.trunc(f32[0]));
          out[b * 18 + 2 + j] = q0 | (q1 << 4);
        }
      }
      return out;
    default:
      throw new TypeError(`cannot encode ggml type ${t.name} (supported: F32, F16, BF16, Q8_0, Q4_0)`);
  }
}

/** C's roundf: halves away from zero. */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}
