// Shared SIMD building blocks for the kernels: byte-to-float widening, nibble splits, int8 dot products, horizontal sums.

/** 16 signed bytes times f32 scale `d`, stored as 16 f32 at dst. */
// @ts-ignore: decorator
@inline export function st16Mul(dst: usize, v: v128, d: v128): void {
  const a = i16x8.extend_low_i8x16_s(v);
  const b = i16x8.extend_high_i8x16_s(v);
  store<v128>(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a)), d));
  store<v128>(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a)), d), 16);
  store<v128>(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b)), d), 32);
  store<v128>(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(b)), d), 48);
}

/** 16 signed bytes, scale first: d * v (same value as v * d; kept to mirror the reference's operand order). */
// @ts-ignore: decorator
@inline export function st16MulRev(dst: usize, v: v128, d: v128): void {
  const a = i16x8.extend_low_i8x16_s(v);
  const b = i16x8.extend_high_i8x16_s(v);
  store<v128>(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a))));
  store<v128>(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a))), 16);
  store<v128>(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b))), 32);
  store<v128>(dst, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(b))), 48);
}

/** 16 signed bytes: v*d + m. */
// @ts-ignore: decorator
@inline export function st16MulAdd(dst: usize, v: v128, d: v128, m: v128): void {
  const a = i16x8.extend_low_i8x16_s(v);
  const b = i16x8.extend_high_i8x16_s(v);
  store<v128>(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a)), d), m));
  store<v128>(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a)), d), m), 16);
  store<v128>(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b)), d), m), 32);
  store<v128>(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(b)), d), m), 48);
}

/** 16 signed bytes: v*d - m. */
// @ts-ignore: decorator
@inline export function st16MulSub(dst: usize, v: v128, d: v128, m: v128): void {
  const a = i16x8.extend_low_i8x16_s(v);
  const b = i16x8.extend_high_i8x16_s(v);
  store<v128>(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a)), d), m));
  store<v128>(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a)), d), m), 16);
  store<v128>(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b)), d), m), 32);
  store<v128>(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(b)), d), m), 48);
}

/** Low nibbles of 16 bytes. */
// @ts-ignore: decorator
@inline export function lowNib(q: v128): v128 {
  return v128.and(q, i8x16.splat(0x0f));
}

/** High nibbles of 16 bytes (16-bit shift then mask: i8x16.shr_u is slow in V8). */
// @ts-ignore: decorator
@inline export function highNib(q: v128): v128 {
  return v128.and(i16x8.shr_u(q, 4), i8x16.splat(0x0f));
}

/** i32x4 partial sums of 16 products of signed bytes a and x (|a*x| <= 16384), added to acc. */
// @ts-ignore: decorator
@inline export function dotI8(a: v128, x: v128, acc: v128): v128 {
  const p = i16x8.add(i16x8.extmul_low_i8x16_s(a, x), i16x8.extmul_high_i8x16_s(a, x));
  return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(p));
}

/** i32x4 partial sums of 32 products: nibbles lo (0..15) with x0 and hi with x1 (relaxed int8 dot where built). */
// @ts-ignore: decorator
@inline export function dotNib32(lo: v128, x0: v128, hi: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, hi, i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, lo, i32x4.splat(0)));
  } else {
    // 4 products of at most 15*127 per i16 lane: no overflow
    let p = i16x8.add(i16x8.extmul_low_i8x16_s(lo, x0), i16x8.extmul_high_i8x16_s(lo, x0));
    p = i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(hi, x1), i16x8.extmul_high_i8x16_s(hi, x1)));
    return i32x4.extadd_pairwise_i16x8_s(p);
  }
}

/**
 * i16x8 sums of 32 products: nibbles lo (0..15) with x0 and hi with x1, 4 products per lane, so each lane
 * stays within 4*15*128 = 7680 (relaxed int8 dot where built; same integers either way).
 */
// @ts-ignore: decorator
@inline export function dotNib16(lo: v128, x0: v128, hi: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
  } else {
    const p = i16x8.add(i16x8.extmul_low_i8x16_s(lo, x0), i16x8.extmul_high_i8x16_s(lo, x0));
    return i16x8.add(p, i16x8.add(i16x8.extmul_low_i8x16_s(hi, x1), i16x8.extmul_high_i8x16_s(hi, x1)));
  }
}

/**
 * Totals of four i16x8 vectors as i32x4 (lane k = total of the k-th): two 16-bit transpose-and-add steps,
 * then one widening pairwise add. Exact while each total of 4 lanes fits in i16: lanes within 8191.
 */
// @ts-ignore: decorator
@inline export function sum4I16(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i16x8.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i16x8.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i64x2.shuffle(ab, cd, 0, 2), i64x2.shuffle(ab, cd, 1, 3)));
}

/** Totals of four i32x4 vectors as i32x4 (lane k = total of the k-th). */
// @ts-ignore: decorator
@inline export function sum4I32(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i64x2.shuffle(ab, cd, 0, 2), i64x2.shuffle(ab, cd, 1, 3));
}

// @ts-ignore: decorator
@inline export function hsumF32(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline export function fmaF32(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Largest |x| of the 32 f32 values at p (one activation block). */
// @ts-ignore: decorator
@inline export function absMax32(p: usize): f32 {
  let m = f32x4.abs(v128.load(p));
  for (let k = 16; k < 128; k += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + k)));
  return max<f32>(max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max<f32>(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
}
