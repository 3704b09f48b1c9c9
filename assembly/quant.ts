// Quantization from f32 to ggml block formats, operation for operation as ggml's reference quantizers; and x to 8-bit blocks.
import { f32ToF16 } from "./half";
import { absMax32 } from "./simd";

/** C's roundf: halfway cases away from zero. */
// @ts-ignore: decorator
@inline function roundAway(x: f32): f32 {
  const t = trunc<f32>(x);
  return abs<f32>(x - t) >= <f32>0.5 ? t + copysign<f32>(1, x) : t;
}

export function quantize_q4_0(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const x = src + (<usize>i << 7);
    const p = dst + <usize>i * 18;
    let amax: f32 = 0;
    let max: f32 = 0;
    for (let j = 0; j < 32; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (amax < abs<f32>(v)) {
        amax = abs<f32>(v);
        max = v;
      }
    }
    const d: f32 = max / <f32>-8;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    store<u16>(p, <u16>f32ToF16(d));
    for (let j = 0; j < 16; j++) {
      const x0 = load<f32>(x + (<usize>j << 2)) * id;
      const x1 = load<f32>(x + (<usize>(j + 16) << 2)) * id;
      const a = min<i32>(15, <i32><i8><i32>(x0 + <f32>8.5));
      const b = min<i32>(15, <i32><i8><i32>(x1 + <f32>8.5));
      store<u8>(p + 2 + j, <u8>(a | (b << 4)));
    }
  }
}

export function quantize_q4_1(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const x = src + (<usize>i << 7);
    const p = dst + <usize>i * 20;
    let mn: f32 = f32.MAX_VALUE;
    let mx: f32 = -f32.MAX_VALUE;
    for (let j = 0; j < 32; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    const d: f32 = (mx - mn) / <f32>15;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    store<u16>(p, <u16>f32ToF16(d));
    store<u16>(p, <u16>f32ToF16(mn), 2);
    for (let j = 0; j < 16; j++) {
      const x0 = (load<f32>(x + (<usize>j << 2)) - mn) * id;
      const x1 = (load<f32>(x + (<usize>(j + 16) << 2)) - mn) * id;
      const a = min<i32>(15, <i32><i8><i32>(x0 + <f32>0.5));
      const b = min<i32>(15, <i32><i8><i32>(x1 + <f32>0.5));
      store<u8>(p + 4 + j, <u8>((a & 0xff) | (b << 4)));
    }
  }
}

export function quantize_q8_0(src: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const x = src + (<usize>i << 7);
    const p = dst + <usize>i * 34;
    let amax: f32 = 0;
    for (let j = 0; j < 32; j++) {
      const v = abs<f32>(load<f32>(x + (<usize>j << 2)));
      amax = amax > v ? amax : v;
    }
    const d: f32 = amax / <f32>127;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    store<u16>(p, <u16>f32ToF16(d));
    for (let j = 0; j < 32; j++) {
      store<i8>(p + 2 + j, <i8><i32>roundAway(load<f32>(x + (<usize>j << 2)) * id));
    }
  }
}

/**
 * x (n values, n a multiple of 32) to 8-bit blocks for the integer GEMV paths: qx[n] int8,
 * dx[n/32] f32 scales, xs[n/32] f32 block sums (dx times the sum of the block's int8 values).
 */
export function quantize_x8(x: usize, n: i32, qx: usize, dx: usize, xs: usize): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const p = x + (<usize>b << 7);
    const amax = absMax32(p);
    const d: f32 = amax / <f32>127;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    let s = i32x4.splat(0);
    for (let k = 0; k < 2; k++) {
      const pk = p + (<usize>k << 6);
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk), id)));
      const b2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 16), id)));
      const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 32), id)));
      const e = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 48), id)));
      s = i32x4.add(s, i32x4.add(i32x4.add(a, b2), i32x4.add(c, e)));
      v128.store(qx + (<usize>b << 5) + (<usize>k << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b2), i16x8.narrow_i32x4_s(c, e)));
    }
    const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
    store<f32>(dx + (<usize>b << 2), d);
    store<f32>(xs + (<usize>b << 2), d * <f32>sum);
  }
}
