// Dequantization of ggml block formats to f32, operation for operation as ggml's reference so results are bit-exact.
import { f16ToF32 } from "./half";
import { st16Mul, st16MulRev, st16MulAdd, st16MulSub, lowNib, highNib } from "./simd";

export function dequant_q4_0(src: usize, dst: usize, nb: i32): void {
  const eight = i8x16.splat(8);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 18;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    const q = v128.load(p, 2);
    st16Mul(o, i8x16.sub(lowNib(q), eight), d);
    st16Mul(o + 64, i8x16.sub(highNib(q), eight), d);
  }
}

export function dequant_q4_1(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 20;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    const m = f32x4.splat(f16ToF32(load<u16>(p, 2)));
    const q = v128.load(p, 4);
    st16MulAdd(o, lowNib(q), d, m);
    st16MulAdd(o + 64, highNib(q), d, m);
  }
}

/** Fifth bits of 16 elements: byte k gets 0x10 when bit (base+k) of qh is set. */
// @ts-ignore: decorator
@inline function fifthBits(qh: u32, base: i32): v128 {
  const bytes = i32x4.splat(<i32>(qh >>> base));
  const spread = i8x16.swizzle(bytes, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const mask = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const set = i8x16.ne(v128.and(spread, mask), i8x16.splat(0));
  return v128.and(set, i8x16.splat(0x10));
}

export function dequant_q5_0(src: usize, dst: usize, nb: i32): void {
  const sixteen = i8x16.splat(16);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 22;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    const qh = load<u32>(p, 2);
    const q = v128.load(p, 6);
    st16Mul(o, i8x16.sub(v128.or(lowNib(q), fifthBits(qh, 0)), sixteen), d);
    st16Mul(o + 64, i8x16.sub(v128.or(highNib(q), fifthBits(qh, 16)), sixteen), d);
  }
}

export function dequant_q5_1(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 24;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    const m = f32x4.splat(f16ToF32(load<u16>(p, 2)));
    const qh = load<u32>(p, 4);
    const q = v128.load(p, 8);
    st16MulAdd(o, v128.or(lowNib(q), fifthBits(qh, 0)), d, m);
    st16MulAdd(o + 64, v128.or(highNib(q), fifthBits(qh, 16)), d, m);
  }
}

export function dequant_q8_0(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 34;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    st16Mul(o, v128.load(p, 2), d);
    st16Mul(o + 64, v128.load(p, 18), d);
  }
}

/** 6-bit scale (low byte) and min (high byte) of sub-block j from K-quant packed scales at s. */
// @ts-ignore: decorator
@inline export function scaleMinK4(j: i32, s: usize): u32 {
  let sc: u32, m: u32;
  if (j < 4) {
    sc = <u32>load<u8>(s + j) & 63;
    m = <u32>load<u8>(s + j + 4) & 63;
  } else {
    sc = (<u32>load<u8>(s + j + 4) & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
    m = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  }
  return sc | (m << 8);
}

export function dequant_q4_k(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 144;
    let o = dst + (<usize>i << 10);
    const d = f16ToF32(load<u16>(p));
    const dmin = f16ToF32(load<u16>(p, 2));
    const sc = p + 4;
    let q = p + 16;
    for (let j = 0; j < 8; j += 2) {
      const a = scaleMinK4(j, sc);
      const b = scaleMinK4(j + 1, sc);
      const d1 = f32x4.splat(d * <f32>(a & 0xff));
      const m1 = f32x4.splat(dmin * <f32>(a >> 8));
      const d2 = f32x4.splat(d * <f32>(b & 0xff));
      const m2 = f32x4.splat(dmin * <f32>(b >> 8));
      const q0 = v128.load(q);
      const q1 = v128.load(q, 16);
      st16MulSub(o, lowNib(q0), d1, m1);
      st16MulSub(o + 64, lowNib(q1), d1, m1);
      st16MulSub(o + 128, highNib(q0), d2, m2);
      st16MulSub(o + 192, highNib(q1), d2, m2);
      q += 32;
      o += 256;
    }
  }
}

export function dequant_q5_k(src: usize, dst: usize, nb: i32): void {
  const one = i8x16.splat(1);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 176;
    let o = dst + (<usize>i << 10);
    const d = f16ToF32(load<u16>(p));
    const dmin = f16ToF32(load<u16>(p, 2));
    const sc = p + 4;
    const h0 = v128.load(p, 16);
    const h1 = v128.load(p, 32);
    let q = p + 48;
    for (let j = 0; j < 8; j += 2) {
      const a = scaleMinK4(j, sc);
      const b = scaleMinK4(j + 1, sc);
      const d1 = f32x4.splat(d * <f32>(a & 0xff));
      const m1 = f32x4.splat(dmin * <f32>(a >> 8));
      const d2 = f32x4.splat(d * <f32>(b & 0xff));
      const m2 = f32x4.splat(dmin * <f32>(b >> 8));
      const q0 = v128.load(q);
      const q1 = v128.load(q, 16);
      const a0 = i16x8.shl(v128.and(i16x8.shr_u(h0, j), one), 4);
      const a1 = i16x8.shl(v128.and(i16x8.shr_u(h1, j), one), 4);
      const b0 = i16x8.shl(v128.and(i16x8.shr_u(h0, j + 1), one), 4);
      const b1 = i16x8.shl(v128.and(i16x8.shr_u(h1, j + 1), one), 4);
      st16MulSub(o, v128.or(lowNib(q0), a0), d1, m1);
      st16MulSub(o + 64, v128.or(lowNib(q1), a1), d1, m1);
      st16MulSub(o + 128, v128.or(highNib(q0), b0), d2, m2);
      st16MulSub(o + 192, v128.or(highNib(q1), b1), d2, m2);
      q += 32;
      o += 256;
    }
  }
}

export function dequant_q6_k(src: usize, dst: usize, nb: i32): void {
  const m4 = i8x16.splat(0x0f);
  const m3 = i8x16.splat(3);
  const k32 = i8x16.splat(32);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 210;
    const d = f16ToF32(load<u16>(p, 208));
    for (let n = 0; n < 2; n++) {
      const ql = p + (<usize>n << 6);
      const qh = p + 128 + (<usize>n << 5);
      const sc = p + 192 + (<usize>n << 3);
      const o = dst + (<usize>i << 10) + (<usize>n << 9);
      for (let c = 0; c < 2; c++) {
        const l0 = v128.load(ql + (<usize>c << 4));
        const l1 = v128.load(ql + 32 + (<usize>c << 4));
        const h = v128.load(qh + (<usize>c << 4));
        const q1 = v128.or(v128.and(l0, m4), i16x8.shl(v128.and(h, m3), 4));
        const q2 = v128.or(v128.and(l1, m4), i16x8.shl(v128.and(i16x8.shr_u(h, 2), m3), 4));
        const q3 = v128.or(v128.and(i16x8.shr_u(l0, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 4), m3), 4));
        const q4 = v128.or(v128.and(i16x8.shr_u(l1, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h, 6), m3), 4));
        const oc = o + (<usize>c << 6);
        st16Mul(oc, i8x16.sub(q1, k32), f32x4.splat(d * <f32>load<i8>(sc + c)));
        st16Mul(oc + 128, i8x16.sub(q2, k32), f32x4.splat(d * <f32>load<i8>(sc + c + 2)));
        st16Mul(oc + 256, i8x16.sub(q3, k32), f32x4.splat(d * <f32>load<i8>(sc + c + 4)));
        st16Mul(oc + 384, i8x16.sub(q4, k32), f32x4.splat(d * <f32>load<i8>(sc + c + 6)));
      }
    }
  }
}

export function dequant_q2_k(src: usize, dst: usize, nb: i32): void {
  const m3 = i8x16.splat(3);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 84;
    const d = f16ToF32(load<u16>(p, 80));
    const dmin = f16ToF32(load<u16>(p, 82));
    let o = dst + (<usize>i << 10);
    let is = 0;
    for (let n = 0; n < 2; n++) {
      const q0 = v128.load(p + 16 + (<usize>n << 5));
      const q1 = v128.load(p + 16 + (<usize>n << 5), 16);
      for (let j = 0; j < 4; j++) {
        const shift = j << 1;
        let sc = <u32>load<u8>(p + is++);
        st16MulSub(o, v128.and(i16x8.shr_u(q0, shift), m3), f32x4.splat(d * <f32>(sc & 0xf)), f32x4.splat(dmin * <f32>(sc >> 4)));
        sc = <u32>load<u8>(p + is++);
        st16MulSub(o + 64, v128.and(i16x8.shr_u(q1, shift), m3), f32x4.splat(d * <f32>(sc & 0xf)), f32x4.splat(dmin * <f32>(sc >> 4)));
        o += 128;
      }
    }
  }
}

/** Scale k (0..15) of a Q3_K block's 12 packed bytes, as a signed value -32..31. */
// @ts-ignore: decorator
@inline function scaleQ3K(s: usize, k: i32): i32 {
  const a0 = load<u32>(s);
  const a1 = load<u32>(s, 4);
  const t = load<u32>(s, 8);
  let r: u32;
  const g = k >> 2;
  if (g == 0) r = (a0 & 0x0f0f0f0f) | ((t & 0x03030303) << 4);
  else if (g == 1) r = (a1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
  else if (g == 2) r = ((a0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4);
  else r = ((a1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
  return <i32>((r >> ((<u32>k & 3) << 3)) & 0xff) - 32;
}

export function dequant_q3_k(src: usize, dst: usize, nb: i32): void {
  const m3 = i8x16.splat(3);
  const four = i8x16.splat(4);
  const zero = i8x16.splat(0);
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 110;
    const dAll = f16ToF32(load<u16>(p, 108));
    const hm0 = v128.load(p);
    const hm1 = v128.load(p, 16);
    const sc = p + 96;
    let o = dst + (<usize>i << 10);
    let is = 0;
    let bit = 0;
    for (let n = 0; n < 2; n++) {
      const q0 = v128.load(p + 32 + (<usize>n << 5));
      const q1 = v128.load(p + 32 + (<usize>n << 5), 16);
      for (let j = 0; j < 4; j++) {
        const shift = j << 1;
        const mbv: i32 = 1 << bit;
        const mb = i8x16.splat(<i8>mbv);
        const s0 = v128.and(i8x16.eq(v128.and(hm0, mb), zero), four);
        const s1 = v128.and(i8x16.eq(v128.and(hm1, mb), zero), four);
        st16Mul(o, i8x16.sub(v128.and(i16x8.shr_u(q0, shift), m3), s0), f32x4.splat(dAll * <f32>scaleQ3K(sc, is++)));
        st16Mul(o + 64, i8x16.sub(v128.and(i16x8.shr_u(q1, shift), m3), s1), f32x4.splat(dAll * <f32>scaleQ3K(sc, is++)));
        o += 128;
        bit++;
      }
    }
  }
}

/** The IQ4 non-linear 4-bit codebook (a constant of the format). */
// @ts-ignore: decorator
@inline function iq4Table(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

export function dequant_iq4_nl(src: usize, dst: usize, nb: i32): void {
  const tbl = iq4Table();
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 18;
    const o = dst + (<usize>i << 7);
    const d = f32x4.splat(f16ToF32(load<u16>(p)));
    const q = v128.load(p, 2);
    st16MulRev(o, i8x16.swizzle(tbl, lowNib(q)), d);
    st16MulRev(o + 64, i8x16.swizzle(tbl, highNib(q)), d);
  }
}

export function dequant_iq4_xs(src: usize, dst: usize, nb: i32): void {
  const tbl = iq4Table();
  for (let i = 0; i < nb; i++) {
    const p = src + <usize>i * 136;
    const d = f16ToF32(load<u16>(p));
    const sh = <u32>load<u16>(p, 2);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((<u32>load<u8>(p + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = f32x4.splat(d * <f32>(<i32>ls - 32));
      const q = v128.load(p + 8 + (<usize>ib << 4));
      const o = dst + (<usize>i << 10) + (<usize>ib << 7);
      st16MulRev(o, i8x16.swizzle(tbl, lowNib(q)), dl);
      st16MulRev(o + 64, i8x16.swizzle(tbl, highNib(q)), dl);
    }
  }
}
