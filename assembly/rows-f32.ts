// f32 weight rows against f32 x, four rows per pass (x loaded once per four rows), shared by the GEMV and batch kernels.
import { hsumF32, fmaF32 } from "./simd";

/*
 * Order of every row's sum, whichever pass takes the row: columns in steps of 8, lanes l of 8i..8i+3 summed
 * in accumulator a and of 8i+4..8i+7 in b (a multiply, then an add, both rounded to f32), v = a + b, the
 * row's total (v0 + v1) + (v2 + v3), then the columns after the last multiple of 8 added one by one.
 * The four-row pass gets the same totals by a transpose of pair sums.
 */

/** Dots of four rows from p (stride bytes apart) with x over the first `main` bytes (a multiple of 32): lane k is row k. */
// @ts-ignore: decorator
@inline function dotRows4(p: usize, stride: usize, x: usize, main: usize): v128 {
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
  const p1 = p + stride, p2 = p1 + stride, p3 = p2 + stride;
  for (let i: usize = 0; i < main; i += 32) {
    const xa = v128.load(x + i), xb = v128.load(x + i, 16);
    a0 = fmaF32(a0, v128.load(p + i), xa); b0 = fmaF32(b0, v128.load(p + i, 16), xb);
    a1 = fmaF32(a1, v128.load(p1 + i), xa); b1 = fmaF32(b1, v128.load(p1 + i, 16), xb);
    a2 = fmaF32(a2, v128.load(p2 + i), xa); b2 = fmaF32(b2, v128.load(p2 + i, 16), xb);
    a3 = fmaF32(a3, v128.load(p3 + i), xa); b3 = fmaF32(b3, v128.load(p3 + i, 16), xb);
  }
  const v0 = f32x4.add(a0, b0), v1 = f32x4.add(a1, b1), v2 = f32x4.add(a2, b2), v3 = f32x4.add(a3, b3);
  // [r0: l0+l1, l2+l3, r1: l0+l1, l2+l3] and the same for rows 2 and 3, then the pairs of pairs
  const s01 = f32x4.add(i32x4.shuffle(v0, v1, 0, 2, 4, 6), i32x4.shuffle(v0, v1, 1, 3, 5, 7));
  const s23 = f32x4.add(i32x4.shuffle(v2, v3, 0, 2, 4, 6), i32x4.shuffle(v2, v3, 1, 3, 5, 7));
  return f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7));
}

/** One row's dot with x over the first `main` bytes, in dotRows4's order. */
// @ts-ignore: decorator
@inline function dotRow1(p: usize, x: usize, main: usize): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0);
  for (let i: usize = 0; i < main; i += 32) {
    a = fmaF32(a, v128.load(p + i), v128.load(x + i));
    b = fmaF32(b, v128.load(p + i, 16), v128.load(x + i, 16));
  }
  return hsumF32(f32x4.add(a, b));
}

/** s plus the row's products over bytes main..end, one by one. */
// @ts-ignore: decorator
@inline function dotTail(s: f32, p: usize, x: usize, main: usize, end: usize): f32 {
  for (let i = main; i < end; i += 4) s += load<f32>(p + i) * load<f32>(x + i);
  return s;
}

/** Four rows from p: o[0..4) = W x, or with acc o[0..4) += sv * (W x). */
// @ts-ignore: decorator
@inline export function f32Rows4(p: usize, stride: usize, x: usize, main: usize, o: usize, sv: v128, acc: bool): void {
  let d = dotRows4(p, stride, x, main);
  if (main < stride) {
    d = f32x4.replace_lane(d, 0, dotTail(f32x4.extract_lane(d, 0), p, x, main, stride));
    d = f32x4.replace_lane(d, 1, dotTail(f32x4.extract_lane(d, 1), p + stride, x, main, stride));
    d = f32x4.replace_lane(d, 2, dotTail(f32x4.extract_lane(d, 2), p + 2 * stride, x, main, stride));
    d = f32x4.replace_lane(d, 3, dotTail(f32x4.extract_lane(d, 3), p + 3 * stride, x, main, stride));
  }
  v128.store(o, acc ? f32x4.add(v128.load(o), f32x4.mul(sv, d)) : d);
}

/** One row from p in f32Rows4's order: o = W x, or with acc o += s * (W x). */
// @ts-ignore: decorator
@inline export function f32Row1(p: usize, stride: usize, x: usize, main: usize, o: usize, s: f32, acc: bool): void {
  const d = dotTail(dotRow1(p, x, main), p, x, main, stride);
  store<f32>(o, acc ? load<f32>(o) + s * d : d);
}

/** Bytes of a row's columns that the vector loop takes (a multiple of 8 columns). */
// @ts-ignore: decorator
@inline export function f32MainBytes(cols: i32): usize {
  return <usize>(cols & ~7) << 2;
}
