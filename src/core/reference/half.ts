// Scalar reference for f16 and bf16 <-> f32 conversions, written from the IEEE definitions.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** f16 bits to f32 value (NaN payload kept in the top mantissa bits). */
export function f16ToF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return f32FromBits(sign | 0x7f800000 | (man << 13));
  if (exp === 0) {
    const v = man * 2 ** -24;
    return sign ? -v : v;
  }
  return f32FromBits(sign | ((exp + 112) << 23) | (man << 13));
}

/** f32 value to f16 bits, round to nearest even; NaN quiet with its top payload bits. */
export function f32ToF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00 | ((a >>> 13) & 0x3ff);
  const v = Math.abs(f32[0]);
  if (v >= 65520) return sign | 0x7c00;
  if (v < 2 ** -14) {
    // subnormal: units of 2^-24, ties to even
    const q = roundEven(v * 2 ** 24);
    return sign | q;
  }
  const e = Math.floor(Math.log2(v));
  let exp = e;
  // guard against log2 rounding at powers of two
  if (2 ** exp > v) exp--;
  else if (2 ** (exp + 1) <= v) exp++;
  let m = roundEven((v / 2 ** exp - 1) * 1024);
  if (m === 1024) {
    m = 0;
    exp++;
  }
  if (exp + 15 >= 31) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | m;
}

function roundEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** f32 to bf16 bits, round to nearest even, NaN forced quiet. */
export function f32ToBf16(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff;
  const lower = bits & 0xffff;
  let upper = bits >>> 16;
  if (lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1)) upper++;
  return upper & 0xffff;
}
