// Half-precision (f16) and bfloat16 conversions to and from f32, exact including subnormals, Inf and NaN.

/** f16 bits to f32, exact: exponent rebias by a multiply, Inf/NaN patched. */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  const a = (h & 0x7fff) << 13;
  let bits = reinterpret<u32>(reinterpret<f32>(a) * reinterpret<f32>(<u32>0x77800000));
  if ((h & 0x7c00) == 0x7c00) bits = 0x7f800000 | ((h & 0x3ff) << 13);
  return reinterpret<f32>(bits | ((h & 0x8000) << 16));
}

/** f32 to f16 bits, round to nearest even; NaN stays NaN (quiet, top payload bits kept). */
export function f32ToF16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const s = (x >>> 16) & 0x8000;
  const a = x & 0x7fffffff;
  if (a >= 0x7f800000) return s | (a > 0x7f800000 ? 0x7e00 | ((a >>> 13) & 0x3ff) : 0x7c00);
  if (a >= 0x38800000) {
    const r = a - 0x38000000;
    const h = (r + 0xfff + ((r >>> 13) & 1)) >>> 13;
    return s | (h > 0x7c00 ? 0x7c00 : h);
  }
  if (a <= 0x33000000) return s;
  const e = a >>> 23;
  const m = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  let q = m >>> shift;
  const rem = m & ((<u32>1 << shift) - 1);
  const half = <u32>1 << (shift - 1);
  if (rem > half || (rem == half && (q & 1) != 0)) q++;
  return s | q;
}

// @ts-ignore: decorator
@inline export function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

/** f32 to bf16 bits, round to nearest even; NaN forced quiet. */
export function f32ToBf16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}

/** Four f16 values (low 16 bits of each i32 lane) to f32x4. */
// @ts-ignore: decorator
@inline export function f16x4ToF32(h: v128): v128 {
  const mag = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
  const isSpecial = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const special = v128.or(i32x4.splat(0x7f800000), i32x4.shl(v128.and(h, i32x4.splat(0x3ff)), 13));
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  return v128.or(v128.bitselect(special, mag, isSpecial), sign);
}

/** True when any of 8 f16 values (i16x8) is Inf or NaN. */
// @ts-ignore: decorator
@inline export function anyF16Special(h: v128): bool {
  return v128.any_true(i16x8.eq(v128.and(h, i16x8.splat(0x7c00)), i16x8.splat(0x7c00)));
}

/**
 * Finite f16 values to f32 (no Inf/NaN: check anyF16Special first). Each f16 goes to the top half of a
 * 32-bit lane; an arithmetic shift by 3 puts the 15 magnitude bits where an f32 needs them and the
 * sign stays in bit 31; the multiply by 2^112 rebiases the exponent (exact, subnormals included).
 */
// @ts-ignore: decorator
@inline export function f16LowFinite(h: v128): v128 {
  const v = i8x16.shuffle(i16x8.splat(0), h, 0, 1, 16, 17, 0, 1, 18, 19, 0, 1, 20, 21, 0, 1, 22, 23);
  return f32x4.mul(v128.and(i32x4.shr_s(v, 3), i32x4.splat(0x8fffe000)), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}
// @ts-ignore: decorator
@inline export function f16HighFinite(h: v128): v128 {
  const v = i8x16.shuffle(i16x8.splat(0), h, 0, 1, 24, 25, 0, 1, 26, 27, 0, 1, 28, 29, 0, 1, 30, 31);
  return f32x4.mul(v128.and(i32x4.shr_s(v, 3), i32x4.splat(0x8fffe000)), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}

/**
 * The first (f16x8Low) or last (f16x8High) four of 8 f16 values as f32x4, exact: `special` is anyF16Special(h),
 * checked once for both halves; Inf and NaN take f16x4ToF32, finite values the shorter path.
 */
// @ts-ignore: decorator
@inline export function f16x8Low(h: v128, special: bool): v128 {
  if (special) return f16x4ToF32(i32x4.extend_low_i16x8_u(h));
  return f16LowFinite(h);
}
// @ts-ignore: decorator
@inline export function f16x8High(h: v128, special: bool): v128 {
  if (special) return f16x4ToF32(i32x4.extend_high_i16x8_u(h));
  return f16HighFinite(h);
}

export function f16_to_f32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    if (anyF16Special(h)) {
      store<v128>(dst + (<usize>i << 2), f16x4ToF32(i32x4.extend_low_i16x8_u(h)));
      store<v128>(dst + (<usize>i << 2) + 16, f16x4ToF32(i32x4.extend_high_i16x8_u(h)));
    } else {
      store<v128>(dst + (<usize>i << 2), f16LowFinite(h));
      store<v128>(dst + (<usize>i << 2) + 16, f16HighFinite(h));
    }
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(<u32>load<u16>(src + (<usize>i << 1))));
}

export function f32_to_f16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(load<f32>(src + (<usize>i << 2))));
}

export function bf16_to_f32(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    store<v128>(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    store<v128>(dst + (<usize>i << 2) + 16, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), bf16ToF32(<u32>load<u16>(src + (<usize>i << 1))));
}

export function f32_to_bf16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToBf16(load<f32>(src + (<usize>i << 2))));
}
