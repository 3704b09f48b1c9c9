// Matrix-matrix products Y = X W^T for a batch of tokens: each weight block is loaded and unpacked once and dotted with up to four tokens' x.
//
// Layouts: token t's 8-bit x sits at qx + t*cols (int8), dx + t*(cols/32)*4 and xs + t*(cols/32)*4 (f32, as the
// quantizers write them); f32 x at x + t*cols*4; the result of row r for token t at y + (t*yStride + r)*4.
// For every token the floating-point operations run in the order of the matching single-token kernel in
// gemv.ts (integer partial sums are exact in any order), so each token's outputs equal that kernel's bit for bit.
// A tile of fewer than four tokens repeats its last token: the repeats write the same value to the same place.
import { f16ToF32, anyF16Special, f16x8Low, f16x8High } from "./half";
import { dotI8, dotNib32, dotNib16, sum4I16, sum4I32, hsumF32, fmaF32, lowNib, highNib } from "./simd";
import { f16x4At, bytes4ToF32, lane0, lane1, lane2, lane3 } from "./blocks";
import { f32Rows4, f32Row1, f32MainBytes } from "./rows-f32";

/** Token i of a tile of four starting at t, clamped to the last of n tokens. */
// @ts-ignore: decorator
@inline function tok(t: i32, i: i32, n: i32): usize {
  return <usize>min<i32>(t + i, n - 1);
}

// ---- Q4_0 and Q4_1: blocks of 32 nibbles, four blocks per step ----

/** Integer dots of four unpacked 4-bit blocks with one token's 128 int8 x at xo: one i32x4 lane per block. */
// @ts-ignore: decorator
@inline function nib4(l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128, xo: usize): v128 {
  return sum4I16(
    dotNib16(l0, v128.load(xo), h0, v128.load(xo, 16)),
    dotNib16(l1, v128.load(xo, 32), h1, v128.load(xo, 48)),
    dotNib16(l2, v128.load(xo, 64), h2, v128.load(xo, 80)),
    dotNib16(l3, v128.load(xo, 96), h3, v128.load(xo, 112)),
  );
}

/** Integer dot of one unpacked 4-bit block with 32 int8 x at xo, as f32x4 partial sums. */
// @ts-ignore: decorator
@inline function nib1(lo: v128, hi: v128, xo: usize): v128 {
  return f32x4.convert_i32x4_s(dotNib32(lo, v128.load(xo), hi, v128.load(xo, 16)));
}

/**
 * Q4_0 (offset -8, applied through the x block sums) or Q4_1 (min m added through them) rows against
 * tokens of 8-bit x with f16-rounded scales; same steps as gemv_q4_0_q8 / gemv_q4_1_q8 per token.
 */
// @ts-ignore: decorator
@inline function gemmNib32(withMin: bool, w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  const nb = cols >> 5;
  const bs: usize = withMin ? 20 : 18;
  const qo: usize = withMin ? 4 : 2;
  const xStride = <usize>cols, sStride = <usize>nb << 2, yS = <usize>yStride << 2;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * <usize>nb * bs;
    for (let t = 0; t < n; t += 4) {
      const i0 = tok(t, 0, n), i1 = tok(t, 1, n), i2 = tok(t, 2, n), i3 = tok(t, 3, n);
      const x0 = qx + i0 * xStride, x1 = qx + i1 * xStride, x2 = qx + i2 * xStride, x3 = qx + i3 * xStride;
      const d0 = dx + i0 * sStride, d1 = dx + i1 * sStride, d2 = dx + i2 * sStride, d3 = dx + i3 * sStride;
      const s0 = xs + i0 * sStride, s1 = xs + i1 * sStride, s2 = xs + i2 * sStride, s3 = xs + i3 * sStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let p = row;
      let b = 0;
      for (; b + 4 <= nb; b += 4) {
        const d = f16x4At(p, bs);
        const m = withMin ? f16x4At(p + 2, bs) : d;
        const v0 = v128.load(p + qo), v1 = v128.load(p + qo + bs), v2 = v128.load(p + qo + 2 * bs), v3 = v128.load(p + qo + 3 * bs);
        const l0 = lowNib(v0), h0 = highNib(v0), l1 = lowNib(v1), h1 = highNib(v1);
        const l2 = lowNib(v2), h2 = highNib(v2), l3 = lowNib(v3), h3 = highNib(v3);
        const bo = <usize>b << 2;
        const xo = <usize>b << 5;
        a0 = fmaF32(a0, f32x4.convert_i32x4_s(nib4(l0, h0, l1, h1, l2, h2, l3, h3, x0 + xo)), f32x4.mul(d, v128.load(d0 + bo)));
        a1 = fmaF32(a1, f32x4.convert_i32x4_s(nib4(l0, h0, l1, h1, l2, h2, l3, h3, x1 + xo)), f32x4.mul(d, v128.load(d1 + bo)));
        a2 = fmaF32(a2, f32x4.convert_i32x4_s(nib4(l0, h0, l1, h1, l2, h2, l3, h3, x2 + xo)), f32x4.mul(d, v128.load(d2 + bo)));
        a3 = fmaF32(a3, f32x4.convert_i32x4_s(nib4(l0, h0, l1, h1, l2, h2, l3, h3, x3 + xo)), f32x4.mul(d, v128.load(d3 + bo)));
        c0 = fmaF32(c0, m, v128.load(s0 + bo));
        c1 = fmaF32(c1, m, v128.load(s1 + bo));
        c2 = fmaF32(c2, m, v128.load(s2 + bo));
        c3 = fmaF32(c3, m, v128.load(s3 + bo));
        p += 4 * bs;
      }
      let e0 = hsumF32(c0), e1 = hsumF32(c1), e2 = hsumF32(c2), e3 = hsumF32(c3);
      for (; b < nb; b++) {
        const d = f16ToF32(load<u16>(p));
        const m = withMin ? f16ToF32(load<u16>(p, 2)) : d;
        const v = v128.load(p + qo);
        const lo = lowNib(v), hi = highNib(v);
        const bo = <usize>b << 2;
        const xo = <usize>b << 5;
        a0 = fmaF32(a0, nib1(lo, hi, x0 + xo), f32x4.splat(d * load<f32>(d0 + bo)));
        a1 = fmaF32(a1, nib1(lo, hi, x1 + xo), f32x4.splat(d * load<f32>(d1 + bo)));
        a2 = fmaF32(a2, nib1(lo, hi, x2 + xo), f32x4.splat(d * load<f32>(d2 + bo)));
        a3 = fmaF32(a3, nib1(lo, hi, x3 + xo), f32x4.splat(d * load<f32>(d3 + bo)));
        e0 += m * load<f32>(s0 + bo);
        e1 += m * load<f32>(s1 + bo);
        e2 += m * load<f32>(s2 + bo);
        e3 += m * load<f32>(s3 + bo);
        p += bs;
      }
      const yr = y + (<usize>r << 2);
      if (withMin) {
        store<f32>(yr + i0 * yS, hsumF32(a0) + e0);
        store<f32>(yr + i1 * yS, hsumF32(a1) + e1);
        store<f32>(yr + i2 * yS, hsumF32(a2) + e2);
        store<f32>(yr + i3 * yS, hsumF32(a3) + e3);
      } else {
        store<f32>(yr + i0 * yS, hsumF32(a0) - <f32>8 * e0);
        store<f32>(yr + i1 * yS, hsumF32(a1) - <f32>8 * e1);
        store<f32>(yr + i2 * yS, hsumF32(a2) - <f32>8 * e2);
        store<f32>(yr + i3 * yS, hsumF32(a3) - <f32>8 * e3);
      }
    }
  }
}

export function gemm_q4_0_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  gemmNib32(false, w, qx, dx, xs, y, rows, cols, n, yStride);
}

export function gemm_q4_1_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  gemmNib32(true, w, qx, dx, xs, y, rows, cols, n, yStride);
}

// ---- Q8_0: blocks of 32 int8 ----

/** Integer dot of one 8-bit block (halves w0, w1) with 32 int8 x at xo, as i32x4 partial sums. */
// @ts-ignore: decorator
@inline function i8Pair(w0: v128, w1: v128, xo: usize): v128 {
  return dotI8(w1, v128.load(xo, 16), dotI8(w0, v128.load(xo), i32x4.splat(0)));
}

/** Integer dots of four 8-bit blocks (w00..w31) with one token's 128 int8 x at xo: one lane per block. */
// @ts-ignore: decorator
@inline function i8Four(w00: v128, w01: v128, w10: v128, w11: v128, w20: v128, w21: v128, w30: v128, w31: v128, xo: usize): v128 {
  return f32x4.convert_i32x4_s(sum4I32(i8Pair(w00, w01, xo), i8Pair(w10, w11, xo + 32), i8Pair(w20, w21, xo + 64), i8Pair(w30, w31, xo + 96)));
}

/** Q8_0 rows against tokens of 8-bit x; same steps as gemv_q8_0_q8 per token. */
export function gemm_q8_0_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  const nb = cols >> 5;
  const xStride = <usize>cols, sStride = <usize>nb << 2, yS = <usize>yStride << 2;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * <usize>nb * 34;
    for (let t = 0; t < n; t += 4) {
      const i0 = tok(t, 0, n), i1 = tok(t, 1, n), i2 = tok(t, 2, n), i3 = tok(t, 3, n);
      const x0 = qx + i0 * xStride, x1 = qx + i1 * xStride, x2 = qx + i2 * xStride, x3 = qx + i3 * xStride;
      const d0 = dx + i0 * sStride, d1 = dx + i1 * sStride, d2 = dx + i2 * sStride, d3 = dx + i3 * sStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let p = row;
      let b = 0;
      for (; b + 4 <= nb; b += 4) {
        const d = f16x4At(p, 34);
        const w00 = v128.load(p, 2), w01 = v128.load(p, 18), w10 = v128.load(p, 36), w11 = v128.load(p, 52);
        const w20 = v128.load(p, 70), w21 = v128.load(p, 86), w30 = v128.load(p, 104), w31 = v128.load(p, 120);
        const bo = <usize>b << 2;
        const xo = <usize>b << 5;
        a0 = fmaF32(a0, i8Four(w00, w01, w10, w11, w20, w21, w30, w31, x0 + xo), f32x4.mul(d, v128.load(d0 + bo)));
        a1 = fmaF32(a1, i8Four(w00, w01, w10, w11, w20, w21, w30, w31, x1 + xo), f32x4.mul(d, v128.load(d1 + bo)));
        a2 = fmaF32(a2, i8Four(w00, w01, w10, w11, w20, w21, w30, w31, x2 + xo), f32x4.mul(d, v128.load(d2 + bo)));
        a3 = fmaF32(a3, i8Four(w00, w01, w10, w11, w20, w21, w30, w31, x3 + xo), f32x4.mul(d, v128.load(d3 + bo)));
        p += 136;
      }
      for (; b < nb; b++) {
        const d = f16ToF32(load<u16>(p));
        const w0 = v128.load(p, 2), w1 = v128.load(p, 18);
        const bo = <usize>b << 2;
        const xo = <usize>b << 5;
        a0 = fmaF32(a0, f32x4.convert_i32x4_s(i8Pair(w0, w1, x0 + xo)), f32x4.splat(d * load<f32>(d0 + bo)));
        a1 = fmaF32(a1, f32x4.convert_i32x4_s(i8Pair(w0, w1, x1 + xo)), f32x4.splat(d * load<f32>(d1 + bo)));
        a2 = fmaF32(a2, f32x4.convert_i32x4_s(i8Pair(w0, w1, x2 + xo)), f32x4.splat(d * load<f32>(d2 + bo)));
        a3 = fmaF32(a3, f32x4.convert_i32x4_s(i8Pair(w0, w1, x3 + xo)), f32x4.splat(d * load<f32>(d3 + bo)));
        p += 34;
      }
      const yr = y + (<usize>r << 2);
      store<f32>(yr + i0 * yS, hsumF32(a0));
      store<f32>(yr + i1 * yS, hsumF32(a1));
      store<f32>(yr + i2 * yS, hsumF32(a2));
      store<f32>(yr + i3 * yS, hsumF32(a3));
    }
  }
}

// ---- Q4_K: super-blocks of 256 (eight sub-blocks of 32 with 6-bit scales and mins) ----

/** One token's fma of a 64-value quarter (nibbles lo0/lo1 then hi0/hi1) into acc with scale lanes from sv. */
// @ts-ignore: decorator
@inline function q4kQuarterLo(acc: v128, lo0: v128, lo1: v128, hi0: v128, hi1: v128, xo: usize, sv: v128): v128 {
  acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lo0, v128.load(xo), lo1, v128.load(xo, 16))), lane0(sv));
  return fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(hi0, v128.load(xo, 32), hi1, v128.load(xo, 48))), lane1(sv));
}

// @ts-ignore: decorator
@inline function q4kQuarterHi(acc: v128, lo0: v128, lo1: v128, hi0: v128, hi1: v128, xo: usize, sv: v128): v128 {
  acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lo0, v128.load(xo), lo1, v128.load(xo, 16))), lane2(sv));
  return fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(hi0, v128.load(xo, 32), hi1, v128.load(xo, 48))), lane3(sv));
}

/** Q4_K rows against tokens of 8-bit x in blocks of 256; same steps as gemv_q4_k_q8 per token. */
export function gemm_q4_k_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  const nb = cols >> 8;
  const xStride = <usize>cols, sStride = <usize>(cols >> 5) << 2, yS = <usize>yStride << 2;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * <usize>nb * 144;
    for (let t = 0; t < n; t += 4) {
      const i0 = tok(t, 0, n), i1 = tok(t, 1, n), i2 = tok(t, 2, n), i3 = tok(t, 3, n);
      const x0 = qx + i0 * xStride, x1 = qx + i1 * xStride, x2 = qx + i2 * xStride, x3 = qx + i3 * xStride;
      const d0 = dx + i0 * sStride, d1 = dx + i1 * sStride, d2 = dx + i2 * sStride, d3 = dx + i3 * sStride;
      const s0 = xs + i0 * sStride, s1 = xs + i1 * sStride, s2 = xs + i2 * sStride, s3 = xs + i3 * sStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let p = row;
      for (let b = 0; b < nb; b++) {
        const d = f32x4.splat(f16ToF32(load<u16>(p)));
        const dmin = f32x4.splat(f16ToF32(load<u16>(p, 2)));
        const u0 = load<u32>(p, 4), u1 = load<u32>(p, 8), u2 = load<u32>(p, 12);
        const scLo = u0 & 0x3f3f3f3f;
        const mLo = u1 & 0x3f3f3f3f;
        const scHi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
        const mHi = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4);
        const ds0 = f32x4.mul(d, bytes4ToF32(scLo)), ds1 = f32x4.mul(d, bytes4ToF32(scHi));
        const dm0 = f32x4.mul(dmin, bytes4ToF32(mLo)), dm1 = f32x4.mul(dmin, bytes4ToF32(mHi));
        const so = <usize>b << 5;
        c0 = fmaF32(fmaF32(c0, dm0, v128.load(s0 + so)), dm1, v128.load(s0 + so, 16));
        c1 = fmaF32(fmaF32(c1, dm0, v128.load(s1 + so)), dm1, v128.load(s1 + so, 16));
        c2 = fmaF32(fmaF32(c2, dm0, v128.load(s2 + so)), dm1, v128.load(s2 + so, 16));
        c3 = fmaF32(fmaF32(c3, dm0, v128.load(s3 + so)), dm1, v128.load(s3 + so, 16));
        const xo = <usize>b << 8;
        const q = p + 16;
        // four 64-value quarters; the scale vector of a quarter is d * sc * (the token's x block scales)
        for (let k: usize = 0; k < 4; k++) {
          const v0 = v128.load(q + (k << 5)), v1 = v128.load(q + (k << 5) + 16);
          const lo0 = lowNib(v0), lo1 = lowNib(v1), hi0 = highNib(v0), hi1 = highNib(v1);
          const ds = k < 2 ? ds0 : ds1;
          const dOff = k < 2 ? so : so + 16;
          const xk = xo + (k << 6);
          if ((k & 1) == 0) {
            a0 = q4kQuarterLo(a0, lo0, lo1, hi0, hi1, x0 + xk, f32x4.mul(ds, v128.load(d0 + dOff)));
            a1 = q4kQuarterLo(a1, lo0, lo1, hi0, hi1, x1 + xk, f32x4.mul(ds, v128.load(d1 + dOff)));
            a2 = q4kQuarterLo(a2, lo0, lo1, hi0, hi1, x2 + xk, f32x4.mul(ds, v128.load(d2 + dOff)));
            a3 = q4kQuarterLo(a3, lo0, lo1, hi0, hi1, x3 + xk, f32x4.mul(ds, v128.load(d3 + dOff)));
          } else {
            a0 = q4kQuarterHi(a0, lo0, lo1, hi0, hi1, x0 + xk, f32x4.mul(ds, v128.load(d0 + dOff)));
            a1 = q4kQuarterHi(a1, lo0, lo1, hi0, hi1, x1 + xk, f32x4.mul(ds, v128.load(d1 + dOff)));
            a2 = q4kQuarterHi(a2, lo0, lo1, hi0, hi1, x2 + xk, f32x4.mul(ds, v128.load(d2 + dOff)));
            a3 = q4kQuarterHi(a3, lo0, lo1, hi0, hi1, x3 + xk, f32x4.mul(ds, v128.load(d3 + dOff)));
          }
        }
        p += 144;
      }
      const yr = y + (<usize>r << 2);
      store<f32>(yr + i0 * yS, hsumF32(a0) - hsumF32(c0));
      store<f32>(yr + i1 * yS, hsumF32(a1) - hsumF32(c1));
      store<f32>(yr + i2 * yS, hsumF32(a2) - hsumF32(c2));
      store<f32>(yr + i3 * yS, hsumF32(a3) - hsumF32(c3));
    }
  }
}

// ---- Q6_K: super-blocks of 256 (6-bit values in ql/qh, sixteen 8-bit scales, f16 d last) ----

/** i16x8 sums of pairs of products a * x for signed bytes a (6-bit values minus 32) and int8 x. */
// @ts-ignore: decorator
@inline function pairs16(a: v128, x: v128): v128 {
  return i16x8.add(i16x8.extmul_low_i8x16_s(a, x), i16x8.extmul_high_i8x16_s(a, x));
}

/**
 * One token's integer sums for 16 values of each of the four sub-blocks of a 128-value half: a0..a3 hold the
 * values minus 32, s0..s3 their scales in all eight 16-bit lanes, x at xo (sub-block k at xo + 32k).
 */
// @ts-ignore: decorator
@inline function q6Part(a0: v128, a1: v128, a2: v128, a3: v128, s0: v128, s1: v128, s2: v128, s3: v128, xo: usize): v128 {
  return sum4I32(
    i32x4.dot_i16x8_s(pairs16(a0, v128.load(xo)), s0),
    i32x4.dot_i16x8_s(pairs16(a1, v128.load(xo, 32)), s1),
    i32x4.dot_i16x8_s(pairs16(a2, v128.load(xo, 64)), s2),
    i32x4.dot_i16x8_s(pairs16(a3, v128.load(xo, 96)), s3),
  );
}

/** The 6-bit value (minus 32) of low nibbles l with two high bits of h at bit `shift`. */
// @ts-ignore: decorator
@inline function six(l: v128, h: v128, shift: i32): v128 {
  return i8x16.sub(v128.or(v128.and(l, i8x16.splat(0x0f)), i16x8.shl(v128.and(i16x8.shr_u(h, shift), i8x16.splat(3)), 4)), i8x16.splat(32));
}

/** As six() for the high nibbles of l. */
// @ts-ignore: decorator
@inline function sixHi(l: v128, h: v128, shift: i32): v128 {
  return six(i16x8.shr_u(l, 4), h, shift);
}

/** Q6_K rows against tokens of 8-bit x in blocks of 256; same float steps as gemv_q6_k_q8 per token. */
export function gemm_q6_k_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  const nb = cols >> 8;
  const xStride = <usize>cols, sStride = <usize>(cols >> 5) << 2, yS = <usize>yStride << 2;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * <usize>nb * 210;
    for (let t = 0; t < n; t += 4) {
      const i0 = tok(t, 0, n), i1 = tok(t, 1, n), i2 = tok(t, 2, n), i3 = tok(t, 3, n);
      const x0 = qx + i0 * xStride, x1 = qx + i1 * xStride, x2 = qx + i2 * xStride, x3 = qx + i3 * xStride;
      const d0 = dx + i0 * sStride, d1 = dx + i1 * sStride, d2 = dx + i2 * sStride, d3 = dx + i3 * sStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let p = row;
      for (let b = 0; b < nb; b++) {
        const d = f32x4.splat(f16ToF32(load<u16>(p, 208)));
        const sc = v128.load(p, 192);
        for (let h: usize = 0; h < 2; h++) {
          const ql = p + (h << 6), qh = p + 128 + (h << 5);
          const sh = h == 0 ? i16x8.extend_low_i8x16_s(sc) : i16x8.extend_high_i8x16_s(sc);
          const xo = (<usize>b << 8) + (h << 7);
          // first 16 values of each sub-block (scales 0, 2, 4, 6 of the half)
          let l0 = v128.load(ql), l1 = v128.load(ql, 32), hb = v128.load(qh);
          let e0 = six(l0, hb, 0), e1 = six(l1, hb, 2), e2 = sixHi(l0, hb, 4), e3 = sixHi(l1, hb, 6);
          let k0 = i16x8.shuffle(sh, sh, 0, 0, 0, 0, 0, 0, 0, 0), k1 = i16x8.shuffle(sh, sh, 2, 2, 2, 2, 2, 2, 2, 2);
          let k2 = i16x8.shuffle(sh, sh, 4, 4, 4, 4, 4, 4, 4, 4), k3 = i16x8.shuffle(sh, sh, 6, 6, 6, 6, 6, 6, 6, 6);
          let t0 = q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x0 + xo);
          let t1 = q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x1 + xo);
          let t2 = q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x2 + xo);
          let t3 = q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x3 + xo);
          // last 16 values of each sub-block (scales 1, 3, 5, 7)
          l0 = v128.load(ql, 16); l1 = v128.load(ql, 48); hb = v128.load(qh, 16);
          e0 = six(l0, hb, 0); e1 = six(l1, hb, 2); e2 = sixHi(l0, hb, 4); e3 = sixHi(l1, hb, 6);
          k0 = i16x8.shuffle(sh, sh, 1, 1, 1, 1, 1, 1, 1, 1); k1 = i16x8.shuffle(sh, sh, 3, 3, 3, 3, 3, 3, 3, 3);
          k2 = i16x8.shuffle(sh, sh, 5, 5, 5, 5, 5, 5, 5, 5); k3 = i16x8.shuffle(sh, sh, 7, 7, 7, 7, 7, 7, 7, 7);
          t0 = i32x4.add(t0, q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x0 + xo + 16));
          t1 = i32x4.add(t1, q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x1 + xo + 16));
          t2 = i32x4.add(t2, q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x2 + xo + 16));
          t3 = i32x4.add(t3, q6Part(e0, e1, e2, e3, k0, k1, k2, k3, x3 + xo + 16));
          const so = (<usize>b << 5) + (h << 4);
          a0 = fmaF32(a0, f32x4.convert_i32x4_s(t0), f32x4.mul(d, v128.load(d0 + so)));
          a1 = fmaF32(a1, f32x4.convert_i32x4_s(t1), f32x4.mul(d, v128.load(d1 + so)));
          a2 = fmaF32(a2, f32x4.convert_i32x4_s(t2), f32x4.mul(d, v128.load(d2 + so)));
          a3 = fmaF32(a3, f32x4.convert_i32x4_s(t3), f32x4.mul(d, v128.load(d3 + so)));
        }
        p += 210;
      }
      const yr = y + (<usize>r << 2);
      store<f32>(yr + i0 * yS, hsumF32(a0));
      store<f32>(yr + i1 * yS, hsumF32(a1));
      store<f32>(yr + i2 * yS, hsumF32(a2));
      store<f32>(yr + i3 * yS, hsumF32(a3));
    }
  }
}

// ---- float weights ----

/** F32 rows against tokens of f32 x: each group of four rows is read from memory once and dotted with every token (as gemv_f32). */
export function gemm_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  gemmF32(w, x, y, rows, cols, n, yStride, 1, false);
}

/** y += s * (W x) per token for F32 W: the second half of a batch of low-rank products (as gemv_f32_acc). */
export function gemm_f32_acc(w: usize, x: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, s: f32): void {
  gemmF32(w, x, y, rows, cols, n, yStride, s, true);
}

// @ts-ignore: decorator
@inline function gemmF32(w: usize, x: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, s: f32, acc: bool): void {
  const stride = <usize>cols << 2, yS = <usize>yStride << 2, main = f32MainBytes(cols), sv = f32x4.splat(s);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const p = w + <usize>r * stride, yr = y + (<usize>r << 2);
    for (let t = 0; t < n; t++) f32Rows4(p, stride, x + <usize>t * stride, main, yr + <usize>t * yS, sv, acc);
  }
  for (; r < rows; r++) {
    const p = w + <usize>r * stride, yr = y + (<usize>r << 2);
    for (let t = 0; t < n; t++) f32Row1(p, stride, x + <usize>t * stride, main, yr + <usize>t * yS, s, acc);
  }
}

/** F16 rows against tokens of f32 x (already rounded to f16 values): eight weights widened once per four tokens; as gemv_f16. */
export function gemm_f16(w: usize, x: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32): void {
  const stride = <usize>cols << 1, xStride = <usize>cols << 2, yS = <usize>yStride << 2;
  for (let r = 0; r < rows; r++) {
    const p = w + <usize>r * stride;
    for (let t = 0; t < n; t += 4) {
      const i0 = tok(t, 0, n), i1 = tok(t, 1, n), i2 = tok(t, 2, n), i3 = tok(t, 3, n);
      const x0 = x + i0 * xStride, x1 = x + i1 * xStride, x2 = x + i2 * xStride, x3 = x + i3 * xStride;
      let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
      let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
      let i = 0;
      for (; i + 8 <= cols; i += 8) {
        const h = v128.load(p + (<usize>i << 1));
        const sp = anyF16Special(h);
        const lo = f16x8Low(h, sp), hi = f16x8High(h, sp);
        const xo = <usize>i << 2;
        a0 = fmaF32(a0, lo, v128.load(x0 + xo)); b0 = fmaF32(b0, hi, v128.load(x0 + xo, 16));
        a1 = fmaF32(a1, lo, v128.load(x1 + xo)); b1 = fmaF32(b1, hi, v128.load(x1 + xo, 16));
        a2 = fmaF32(a2, lo, v128.load(x2 + xo)); b2 = fmaF32(b2, hi, v128.load(x2 + xo, 16));
        a3 = fmaF32(a3, lo, v128.load(x3 + xo)); b3 = fmaF32(b3, hi, v128.load(x3 + xo, 16));
      }
      let s0 = hsumF32(f32x4.add(a0, b0)), s1 = hsumF32(f32x4.add(a1, b1)), s2 = hsumF32(f32x4.add(a2, b2)), s3 = hsumF32(f32x4.add(a3, b3));
      for (; i < cols; i++) {
        const v = f16ToF32(load<u16>(p + (<usize>i << 1)));
        const xo = <usize>i << 2;
        s0 += v * load<f32>(x0 + xo);
        s1 += v * load<f32>(x1 + xo);
        s2 += v * load<f32>(x2 + xo);
        s3 += v * load<f32>(x3 + xo);
      }
      const yr = y + (<usize>r << 2);
      store<f32>(yr + i0 * yS, s0);
      store<f32>(yr + i1 * yS, s1);
      store<f32>(yr + i2 * yS, s2);
      store<f32>(yr + i3 * yS, s3);
    }
  }
}
