// Fused matrix-vector products y = W x over weight rows, for f32 x and for x quantized to 8-bit blocks.
import { f16ToF32, f16x4ToF32, anyF16Special, f16LowFinite, f16HighFinite } from "./half";
import { dotI8, dotNib32, dotNib16, sum4I16, sum4I32, hsumF32, fmaF32, lowNib, highNib } from "./simd";
import { scaleMinK4, dequant_q4_1, dequant_q8_0, dequant_q4_k, dequant_q6_k, dequant_q5_0, dequant_q5_1, dequant_q5_k, dequant_q2_k, dequant_q3_k, dequant_iq4_nl, dequant_iq4_xs } from "./dequant";
import { bf16_to_f32 } from "./half";
import { f16x4At, bytes4ToF32, lane0, lane1, lane2, lane3 } from "./blocks";
import { f32Rows4, f32Row1, f32MainBytes } from "./rows-f32";

/** y = W x for f32 W, four rows per pass (rows-f32.ts gives the order of each row's sum). */
export function gemv_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  gemvF32(w, x, y, rows, cols, 1, false);
}

/** y[r] += s * (W x)[r]: the second half of a low-rank product (B t) accumulated into y. */
export function gemv_f32_acc(w: usize, x: usize, y: usize, rows: i32, cols: i32, s: f32): void {
  gemvF32(w, x, y, rows, cols, s, true);
}

// @ts-ignore: decorator
@inline function gemvF32(w: usize, x: usize, y: usize, rows: i32, cols: i32, s: f32, acc: bool): void {
  const stride = <usize>cols << 2, main = f32MainBytes(cols), sv = f32x4.splat(s);
  let r = 0;
  for (; r + 4 <= rows; r += 4) f32Rows4(w + <usize>r * stride, stride, x, main, y + (<usize>r << 2), sv, acc);
  for (; r < rows; r++) f32Row1(w + <usize>r * stride, stride, x, main, y + (<usize>r << 2), s, acc);
}

export function gemv_f16(w: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  const stride = <usize>cols << 1;
  const last = w + <usize>rows * stride - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    const p = w + <usize>r * stride;
    touch += aheadRow(p, stride, last);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let i = 0;
    for (; i + 8 <= cols; i += 8) {
      const h = v128.load(p + (<usize>i << 1));
      const xo = x + (<usize>i << 2);
      if (anyF16Special(h)) {
        a0 = fmaF32(a0, f16x4ToF32(i32x4.extend_low_i16x8_u(h)), v128.load(xo));
        a1 = fmaF32(a1, f16x4ToF32(i32x4.extend_high_i16x8_u(h)), v128.load(xo, 16));
      } else {
        a0 = fmaF32(a0, f16LowFinite(h), v128.load(xo));
        a1 = fmaF32(a1, f16HighFinite(h), v128.load(xo, 16));
      }
    }
    let s = hsumF32(f32x4.add(a0, a1));
    for (; i < cols; i++) s += f16ToF32(load<u16>(p + (<usize>i << 1))) * load<f32>(x + (<usize>i << 2));
    store<f32>(y + (<usize>r << 2), s);
  }
  keep(touch, y);
}

/** Q4_0 with f32 x: nibbles widened to f32 in registers. */
export function gemv_q4_0_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 5;
  const last = w + <usize>rows * <usize>nb * 18 - 1;
  let touch: u32 = 0;
  const eight = i8x16.splat(8);
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 18;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      touch += ahead(p, last);
      const d = f32x4.splat(f16ToF32(load<u16>(p)));
      const q = v128.load(p, 2);
      const xb = x + (<usize>b << 7);
      const lo = i8x16.sub(lowNib(q), eight);
      const hi = i8x16.sub(highNib(q), eight);
      const l0 = i16x8.extend_low_i8x16_s(lo), l1 = i16x8.extend_high_i8x16_s(lo);
      const h0 = i16x8.extend_low_i8x16_s(hi), h1 = i16x8.extend_high_i8x16_s(hi);
      let s = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l0)), v128.load(xb));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l0)), v128.load(xb, 16));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l1)), v128.load(xb, 32));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l1)), v128.load(xb, 48));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h0)), v128.load(xb, 64));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h0)), v128.load(xb, 80));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h1)), v128.load(xb, 96));
      s = fmaF32(s, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h1)), v128.load(xb, 112));
      acc = fmaF32(acc, s, d);
      p += 18;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc));
  }
  keep(touch, y);
}

/** Q4_0 with f32 x, no SIMD: the wasm scalar baseline. */
export function gemv_q4_0_f32_scalar(w: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 5;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 18;
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const d = f16ToF32(load<u16>(p));
      const xb = x + (<usize>b << 7);
      let s: f32 = 0;
      for (let j = 0; j < 16; j++) {
        const q = <i32>load<u8>(p + 2 + j);
        s += <f32>((q & 15) - 8) * load<f32>(xb + (<usize>j << 2)) + <f32>((q >> 4) - 8) * load<f32>(xb + (<usize>(j + 16) << 2));
      }
      acc += s * d;
      p += 18;
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/**
 * How far ahead (bytes) some weight loops touch memory, starting cache misses (and page walks) early.
 * Measured on cold weights: Q4_0/Q4_1 with 8-bit x +60 to +90%, F16 +55%, per-row dequantize paths
 * +45%; Q8_0 and Q4_K with 8-bit x about +20% (one touch per 64 bytes: touching every 128 bytes lost
 * most of the gain). F32 and the Q6_K integer kernel ran slower with it, so those do not touch.
 */
const PREFETCH: usize = 8192;

/** Loads one byte PREFETCH ahead of p (clamped to the last weight byte); its value only feeds keep(). */
// @ts-ignore: decorator
@inline function ahead(p: usize, last: usize): u32 {
  return <u32>load<u8>(min<usize>(p + PREFETCH, last));
}

/** Touches every KiB of the row-sized span PREFETCH ahead of p (for kernels that stream whole rows). */
// @ts-ignore: decorator
@inline function aheadRow(p: usize, rowBytes: usize, last: usize): u32 {
  let t: u32 = 0;
  for (let o: usize = 0; o < rowBytes; o += 1024) t += ahead(p + o, last);
  return t;
}

/** Keeps the touch loads alive without changing results (a never-true comparison on their sum). */
// @ts-ignore: decorator
@inline export function keep(touch: u32, y: usize): void {
  if (touch == 0xffffffff) store<u8>(y, load<u8>(y));
}

/** i16x8 partial sums of one 4-bit block (16 packed bytes at q) with 32 int8 x at xo. */
// @ts-ignore: decorator
@inline function nibBlock16(q: usize, xo: usize): v128 {
  const v = v128.load(q);
  return dotNib16(lowNib(v), v128.load(xo), highNib(v), v128.load(xo, 16));
}

/** Integer dot of one 4-bit block (16 packed bytes at q) with 32 int8 x at xo. */
// @ts-ignore: decorator
@inline function nibBlock(q: usize, xo: usize): v128 {
  const v = v128.load(q);
  return f32x4.convert_i32x4_s(dotNib32(lowNib(v), v128.load(xo), highNib(v), v128.load(xo, 16)));
}

/** i32x4 partial sums of one 8-bit block (32 int8 at q) with 32 int8 x at xo. */
// @ts-ignore: decorator
@inline function i8Dot(q: usize, xo: usize): v128 {
  return dotI8(v128.load(q, 16), v128.load(xo, 16), dotI8(v128.load(q), v128.load(xo), i32x4.splat(0)));
}

// @ts-ignore: decorator
@inline function i8Block(q: usize, xo: usize): v128 {
  return f32x4.convert_i32x4_s(i8Dot(q, xo));
}

/**
 * Q4_0 with 8-bit x (qx int8, dx scales, xs block sums): four blocks per step; their integer dots are
 * summed in 16-bit lanes into one i32x4 (a lane per block), converted once and scaled by d * dx; the -8
 * offset is applied once per row through the x block sums (dot(q - 8, x) = dot(q, x) - 8 sum(x)).
 */
export function gemv_q4_0_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 5;
  const last = w + <usize>rows * <usize>nb * 18 - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 18;
    let acc = f32x4.splat(0);
    let corr = f32x4.splat(0);
    let b = 0;
    for (; b + 4 <= nb; b += 4) {
      touch += ahead(p, last);
      const d = f16x4At(p, 18);
      const bo = <usize>b << 2;
      const xo = qx + (<usize>b << 5);
      const t = sum4I16(nibBlock16(p + 2, xo), nibBlock16(p + 20, xo + 32), nibBlock16(p + 38, xo + 64), nibBlock16(p + 56, xo + 96));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(t), f32x4.mul(d, v128.load(dx + bo)));
      corr = fmaF32(corr, d, v128.load(xs + bo));
      p += 72;
    }
    let c = hsumF32(corr);
    for (; b < nb; b++) {
      const d = f16ToF32(load<u16>(p));
      const bo = <usize>b << 2;
      acc = fmaF32(acc, nibBlock(p + 2, qx + (<usize>b << 5)), f32x4.splat(d * load<f32>(dx + bo)));
      c += d * load<f32>(xs + bo);
      p += 18;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc) - <f32>8 * c);
  }
  keep(touch, y);
}

export function gemv_q4_1_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 5;
  const last = w + <usize>rows * <usize>nb * 20 - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 20;
    let acc = f32x4.splat(0);
    let corr = f32x4.splat(0);
    let b = 0;
    for (; b + 4 <= nb; b += 4) {
      touch += ahead(p, last);
      const d = f16x4At(p, 20);
      const m = f16x4At(p + 2, 20);
      const bo = <usize>b << 2;
      const xo = qx + (<usize>b << 5);
      const t = sum4I16(nibBlock16(p + 4, xo), nibBlock16(p + 24, xo + 32), nibBlock16(p + 44, xo + 64), nibBlock16(p + 64, xo + 96));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(t), f32x4.mul(d, v128.load(dx + bo)));
      corr = fmaF32(corr, m, v128.load(xs + bo));
      p += 80;
    }
    let c = hsumF32(corr);
    for (; b < nb; b++) {
      const d = f16ToF32(load<u16>(p));
      const bo = <usize>b << 2;
      acc = fmaF32(acc, nibBlock(p + 4, qx + (<usize>b << 5)), f32x4.splat(d * load<f32>(dx + bo)));
      c += f16ToF32(load<u16>(p, 2)) * load<f32>(xs + bo);
      p += 20;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc) + c);
  }
  keep(touch, y);
}

export function gemv_q8_0_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 5;
  const last = w + <usize>rows * <usize>nb * 34 - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 34;
    let acc = f32x4.splat(0);
    let b = 0;
    for (; b + 4 <= nb; b += 4) {
      touch += ahead(p, last) + ahead(p + 64, last);
      const s = f32x4.mul(f16x4At(p, 34), v128.load(dx + (<usize>b << 2)));
      const xo = qx + (<usize>b << 5);
      const t = sum4I32(i8Dot(p + 2, xo), i8Dot(p + 36, xo + 32), i8Dot(p + 70, xo + 64), i8Dot(p + 104, xo + 96));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(t), s);
      p += 136;
    }
    for (; b < nb; b++) {
      const d = f16ToF32(load<u16>(p));
      acc = fmaF32(acc, i8Block(p + 2, qx + (<usize>b << 5)), f32x4.splat(d * load<f32>(dx + (<usize>b << 2))));
      p += 34;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc));
  }
  keep(touch, y);
}

/**
 * Q4_K with 8-bit x. Per super-block the eight 6-bit scales and mins are unpacked at once (as packed
 * bytes in u32 words) into vectors, scaled by the x block scales, and picked per sub-block by lane.
 */
export function gemv_q4_k_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 8;
  const last = w + <usize>rows * <usize>nb * 144 - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 144;
    let acc = f32x4.splat(0);
    let corr = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      touch += ahead(p, last) + ahead(p + 64, last) + ahead(p + 128, last);
      const d = f32x4.splat(f16ToF32(load<u16>(p)));
      const dmin = f32x4.splat(f16ToF32(load<u16>(p, 2)));
      const a0 = load<u32>(p, 4), a1 = load<u32>(p, 8), a2 = load<u32>(p, 12);
      const scLo = a0 & 0x3f3f3f3f;
      const mLo = a1 & 0x3f3f3f3f;
      const scHi = (a2 & 0x0f0f0f0f) | (((a0 >> 6) & 0x03030303) << 4);
      const mHi = ((a2 >> 4) & 0x0f0f0f0f) | (((a1 >> 6) & 0x03030303) << 4);
      const bo = dx + (<usize>b << 5);
      const so = xs + (<usize>b << 5);
      const sv0 = f32x4.mul(f32x4.mul(d, bytes4ToF32(scLo)), v128.load(bo));
      const sv1 = f32x4.mul(f32x4.mul(d, bytes4ToF32(scHi)), v128.load(bo, 16));
      corr = fmaF32(corr, f32x4.mul(dmin, bytes4ToF32(mLo)), v128.load(so));
      corr = fmaF32(corr, f32x4.mul(dmin, bytes4ToF32(mHi)), v128.load(so, 16));
      const xo = qx + (<usize>b << 8);
      const q = p + 16;
      let v0 = v128.load(q), v1 = v128.load(q, 16);
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lowNib(v0), v128.load(xo), lowNib(v1), v128.load(xo, 16))), lane0(sv0));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(highNib(v0), v128.load(xo, 32), highNib(v1), v128.load(xo, 48))), lane1(sv0));
      v0 = v128.load(q, 32); v1 = v128.load(q, 48);
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lowNib(v0), v128.load(xo, 64), lowNib(v1), v128.load(xo, 80))), lane2(sv0));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(highNib(v0), v128.load(xo, 96), highNib(v1), v128.load(xo, 112))), lane3(sv0));
      v0 = v128.load(q, 64); v1 = v128.load(q, 80);
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lowNib(v0), v128.load(xo, 128), lowNib(v1), v128.load(xo, 144))), lane0(sv1));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(highNib(v0), v128.load(xo, 160), highNib(v1), v128.load(xo, 176))), lane1(sv1));
      v0 = v128.load(q, 96); v1 = v128.load(q, 112);
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(lowNib(v0), v128.load(xo, 192), lowNib(v1), v128.load(xo, 208))), lane2(sv1));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(dotNib32(highNib(v0), v128.load(xo, 224), highNib(v1), v128.load(xo, 240))), lane3(sv1));
      p += 144;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc) - hsumF32(corr));
  }
  keep(touch, y);
}

/**
 * i16x8 sums of pairs of products (q - 32) * x for 16 6-bit q (0..63): each lane within 2*32*128 = 8192.
 * Plain SIMD in every build: the relaxed int8 dot (which needs q unsigned, so a second dot for the -32)
 * measured slower here.
 */
// @ts-ignore: decorator
@inline function dotQ6(q: v128, x: v128): v128 {
  const a = i8x16.sub(q, i8x16.splat(32));
  return i16x8.add(i16x8.extmul_low_i8x16_s(a, x), i16x8.extmul_high_i8x16_s(a, x));
}

/**
 * One 128-value half of a Q6_K super-block: i32x4 whose lane k is the integer sum over sub-block k (32
 * values) of scale * (q - 32) * x. sc holds the half's eight 8-bit scales widened to 16 bits; a 16-bit
 * multiply-add (pairs of lanes) applies the scale of each group of 16.
 */
// @ts-ignore: decorator
@inline function q6Half(ql: usize, qh: usize, sc: v128, xo: usize): v128 {
  const m4 = i8x16.splat(0x0f);
  const m3 = i8x16.splat(3);
  let l0 = v128.load(ql), l1 = v128.load(ql, 32), h = v128.load(qh);
  let i0 = i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(l0, m4), i16x8.shl(v128.and(h, m3), 4)), v128.load(xo)), i16x8.shuffle(sc, sc, 0, 0, 0, 0, 0, 0, 0, 0));
  let i1 = i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(l1, m4), i16x8.shl(v128.and(i16x8.shr_u(h, 2), m3), 4)), v128.load(xo, 32)), i16x8.shuffle(sc, sc, 2, 2, 2, 2, 2, 2, 2, 2));
  let i2 = i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(i16x8.shr_u(l0, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 4), m3), 4)), v128.load(xo, 64)), i16x8.shuffle(sc, sc, 4, 4, 4, 4, 4, 4, 4, 4));
  let i3 = i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(i16x8.shr_u(l1, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 6), m3), 4)), v128.load(xo, 96)), i16x8.shuffle(sc, sc, 6, 6, 6, 6, 6, 6, 6, 6));
  l0 = v128.load(ql, 16); l1 = v128.load(ql, 48); h = v128.load(qh, 16);
  i0 = i32x4.add(i0, i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(l0, m4), i16x8.shl(v128.and(h, m3), 4)), v128.load(xo, 16)), i16x8.shuffle(sc, sc, 1, 1, 1, 1, 1, 1, 1, 1)));
  i1 = i32x4.add(i1, i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(l1, m4), i16x8.shl(v128.and(i16x8.shr_u(h, 2), m3), 4)), v128.load(xo, 48)), i16x8.shuffle(sc, sc, 3, 3, 3, 3, 3, 3, 3, 3)));
  i2 = i32x4.add(i2, i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(i16x8.shr_u(l0, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 4), m3), 4)), v128.load(xo, 80)), i16x8.shuffle(sc, sc, 5, 5, 5, 5, 5, 5, 5, 5)));
  i3 = i32x4.add(i3, i32x4.dot_i16x8_s(dotQ6(v128.or(v128.and(i16x8.shr_u(l1, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 6), m3), 4)), v128.load(xo, 112)), i16x8.shuffle(sc, sc, 7, 7, 7, 7, 7, 7, 7, 7)));
  return sum4I32(i0, i1, i2, i3);
}

/** Q6_K with 8-bit x: integer sums per 32-value sub-block, converted and scaled by d * dx once per four. */
export function gemv_q6_k_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  const nb = cols >> 8;
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>nb * 210;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const d = f32x4.splat(f16ToF32(load<u16>(p, 208)));
      const sc = v128.load(p, 192);
      const xb = <usize>b << 3;
      const t0 = q6Half(p, p + 128, i16x8.extend_low_i8x16_s(sc), qx + (xb << 5));
      acc = fmaF32(acc, f32x4.convert_i32x4_s(t0), f32x4.mul(d, v128.load(dx + (xb << 2))));
      const t1 = q6Half(p + 64, p + 160, i16x8.extend_high_i8x16_s(sc), qx + (xb << 5) + 128);
      acc = fmaF32(acc, f32x4.convert_i32x4_s(t1), f32x4.mul(d, v128.load(dx + (xb << 2), 16)));
      p += 210;
    }
    store<f32>(y + (<usize>r << 2), hsumF32(acc));
  }
}

// f32-x GEMV for the other block types: each row is dequantized into an L1-sized scratch row, then dotted.
// @ts-ignore: decorator
@inline function viaScratch(kind: i32, w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize, rowBytes: usize, bs: i32): void {
  const nb = cols / bs;
  const last = w + <usize>rows * rowBytes - 1;
  let touch: u32 = 0;
  for (let r = 0; r < rows; r++) {
    const p = w + <usize>r * rowBytes;
    touch += aheadRow(p, rowBytes, last);
    if (kind == 3) dequant_q4_1(p, scratch, nb);
    else if (kind == 8) dequant_q8_0(p, scratch, nb);
    else if (kind == 12) dequant_q4_k(p, scratch, nb);
    else if (kind == 14) dequant_q6_k(p, scratch, nb);
    else if (kind == 6) dequant_q5_0(p, scratch, nb);
    else if (kind == 7) dequant_q5_1(p, scratch, nb);
    else if (kind == 13) dequant_q5_k(p, scratch, nb);
    else if (kind == 10) dequant_q2_k(p, scratch, nb);
    else if (kind == 11) dequant_q3_k(p, scratch, nb);
    else if (kind == 20) dequant_iq4_nl(p, scratch, nb);
    else if (kind == 23) dequant_iq4_xs(p, scratch, nb);
    else bf16_to_f32(p, scratch, cols);
    f32Row1(scratch, <usize>cols << 2, x, f32MainBytes(cols), y + (<usize>r << 2), 1, false);
  }
  keep(touch, y);
}

export function gemv_q4_1_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(3, w, x, y, rows, cols, scratch, <usize>(cols >> 5) * 20, 32); }
export function gemv_q8_0_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(8, w, x, y, rows, cols, scratch, <usize>(cols >> 5) * 34, 32); }
export function gemv_q5_0_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(6, w, x, y, rows, cols, scratch, <usize>(cols >> 5) * 22, 32); }
export function gemv_q5_1_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(7, w, x, y, rows, cols, scratch, <usize>(cols >> 5) * 24, 32); }
export function gemv_q4_k_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(12, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 144, 256); }
export function gemv_q5_k_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(13, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 176, 256); }
export function gemv_q6_k_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(14, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 210, 256); }
export function gemv_q2_k_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(10, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 84, 256); }
export function gemv_q3_k_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(11, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 110, 256); }
export function gemv_iq4_nl_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(20, w, x, y, rows, cols, scratch, <usize>(cols >> 5) * 18, 32); }
export function gemv_iq4_xs_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(23, w, x, y, rows, cols, scratch, <usize>(cols >> 8) * 136, 256); }
export function gemv_bf16_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, scratch: usize): void { viaScratch(30, w, x, y, rows, cols, scratch, <usize>cols << 1, 1); }

