// Block-format helpers shared by the product kernels: four f16 block scales at once, packed bytes to floats, lane broadcasts.
import { f16x4ToF32 } from "./half";

/**
 * Four f16 scales at p, p+stride, p+2*stride, p+3*stride as f32x4 (exact). Each goes to the top half of a
 * 32-bit lane, where a shift, a mask and a multiply convert finite values; Inf/NaN take the general path.
 */
// @ts-ignore: decorator
@inline export function f16x4At(p: usize, stride: usize): v128 {
  let h = v128.load16_lane(p, i32x4.splat(0), 1);
  h = v128.load16_lane(p + stride, h, 3);
  h = v128.load16_lane(p + 2 * stride, h, 5);
  h = v128.load16_lane(p + 3 * stride, h, 7);
  if (v128.any_true(i32x4.eq(v128.and(h, i32x4.splat(0x7c000000)), i32x4.splat(0x7c000000)))) return f16x4AtSpecial(p, stride);
  return f32x4.mul(v128.and(i32x4.shr_s(h, 3), i32x4.splat(0x8fffe000)), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}

/** f16x4At for groups holding an Inf or NaN scale. */
function f16x4AtSpecial(p: usize, stride: usize): v128 {
  let v = i32x4.splat(<i32>load<u16>(p));
  v = i32x4.replace_lane(v, 1, <i32>load<u16>(p + stride));
  v = i32x4.replace_lane(v, 2, <i32>load<u16>(p + 2 * stride));
  v = i32x4.replace_lane(v, 3, <i32>load<u16>(p + 3 * stride));
  return f16x4ToF32(v);
}

// @ts-ignore: decorator
@inline export function lane0(v: v128): v128 { return i32x4.shuffle(v, v, 0, 0, 0, 0); }
// @ts-ignore: decorator
@inline export function lane1(v: v128): v128 { return i32x4.shuffle(v, v, 1, 1, 1, 1); }
// @ts-ignore: decorator
@inline export function lane2(v: v128): v128 { return i32x4.shuffle(v, v, 2, 2, 2, 2); }
// @ts-ignore: decorator
@inline export function lane3(v: v128): v128 { return i32x4.shuffle(v, v, 3, 3, 3, 3); }

/** Four packed bytes (one u32) to f32x4. */
// @ts-ignore: decorator
@inline export function bytes4ToF32(v: u32): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(i32x4.splat(<i32>v))));
}

/** [a[0], b[1], c[2], d[3]] (32-bit lanes): gathers a row's packed bytes from the four vectors of a grouped Q4_0 entry. */
// @ts-ignore: decorator
@inline export function pickLanes(a: v128, b: v128, c: v128, d: v128): v128 {
  return i32x4.shuffle(i32x4.shuffle(a, b, 0, 5, 2, 7), i32x4.shuffle(c, d, 0, 5, 2, 7), 0, 1, 6, 7);
}
