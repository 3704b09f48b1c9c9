// Building blocks of the grouped Q4_0 layout's kernels (four rows per 32-value block entry): the rows' scales, their integer dots with one token's x, touches ahead.
/**
 * The four f16 scales at p as f32x4, exact for finite values (each goes to the top half of a 32-bit lane,
 * where a shift, a mask and a multiply by 2^112 convert it). Inf/NaN scales are not handled: matrices holding
 * one are not repacked.
 */
// @ts-ignore: decorator
@inline export function scales4(p: usize): v128 {
  const h = i32x4.shl(v128.load16x4_u(p), 16);
  return f32x4.mul(v128.and(i32x4.shr_s(h, 3), i32x4.splat(0x8fffe000)), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}

/**
 * Integer dots of one block entry's four rows with the 32 int8 x at xo, the entry's four vectors already split
 * into low (l_m) and high (h_m) nibbles: lane k is row k's sum of nibble * x. Lane j of vector m belongs to row
 * (j + m) mod 4, so each vector's partial sums are rotated by m lanes. 16-bit lanes (relaxed build): each holds
 * at most 16 products of 15 * 128 (30720) before widening.
 */
// @ts-ignore: decorator
@inline export function dot4RowsNib(l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128, xo: usize): v128 {
  const xl = v128.load(xo), xh = v128.load(xo, 16);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const r0 = halves16(l0, h0, xl, xh), r1 = halves16(l1, h1, xl, xh), r2 = halves16(l2, h2, xl, xh), r3 = halves16(l3, h3, xl, xh);
    const s = i16x8.add(i16x8.add(r0, i32x4.shuffle(r1, r1, 3, 0, 1, 2)), i16x8.add(i32x4.shuffle(r2, r2, 2, 3, 0, 1), i32x4.shuffle(r3, r3, 1, 2, 3, 0)));
    return i32x4.extadd_pairwise_i16x8_s(s);
  } else {
    const r0 = halves32(l0, h0, xl, xh), r1 = halves32(l1, h1, xl, xh), r2 = halves32(l2, h2, xl, xh), r3 = halves32(l3, h3, xl, xh);
    return i32x4.add(i32x4.add(r0, i32x4.shuffle(r1, r1, 3, 0, 1, 2)), i32x4.add(i32x4.shuffle(r2, r2, 2, 3, 0, 1), i32x4.shuffle(r3, r3, 1, 2, 3, 0)));
  }
}

/** i16x8 pair sums of lo * xl + hi * xh (relaxed int8 dot; nibbles are the 7-bit operand). */
// @ts-ignore: decorator
@inline function halves16(lo: v128, hi: v128, xl: v128, xh: v128): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xh, hi));
}

/** i32x4 sums of lo * xl + hi * xh over each 32-bit lane's four bytes (plain SIMD). */
// @ts-ignore: decorator
@inline function halves32(lo: v128, hi: v128, xl: v128, xh: v128): v128 {
  const a = i16x8.add(i16x8.extmul_low_i8x16_s(lo, xl), i16x8.extmul_low_i8x16_s(hi, xh));
  const b = i16x8.add(i16x8.extmul_high_i8x16_s(lo, xl), i16x8.extmul_high_i8x16_s(hi, xh));
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(i32x4.shuffle(a, b, 0, 2, 4, 6)), i32x4.extadd_pairwise_i16x8_s(i32x4.shuffle(a, b, 1, 3, 5, 7)));
}

/**
 * How far ahead (bytes) the first pass over a group touches the weights, one byte per 64-byte line of the
 * 288 bytes it steps over (the other passes find the group in cache). Measured on cold weights against one
 * touch per entry in every pass at 8 KiB: +10 to +30% (1 thread, 48 MiB working set).
 */
export const AHEAD: usize = 16384;

/** Loads one byte in each of the five 64-byte lines from p + AHEAD on (clamped to the last weight byte); the values only feed keep(). */
// @ts-ignore: decorator
@inline export function touchAhead(p: usize, last: usize): u32 {
  const q = p + AHEAD;
  return <u32>load<u8>(min<usize>(q, last)) + <u32>load<u8>(min<usize>(q + 64, last)) + <u32>load<u8>(min<usize>(q + 128, last)) +
    <u32>load<u8>(min<usize>(q + 192, last)) + <u32>load<u8>(min<usize>(q + 256, last));
}
