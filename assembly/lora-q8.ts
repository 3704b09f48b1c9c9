// Compact adapter halves on quantized bases: t = A x rounded to 7-bit integers, and y += s B t over int8 rows of B with a scale and an integer sum per row.
import { dotI8, sum4I32 } from "./simd";

/**
 * The adapter's inner vector t (r f32 values) to integers q in [-63, 63] with one f32 scale dt = max|t| / 63,
 * stored biased as bytes q + 64 (1..127, so they can be the unsigned operand of the relaxed int8 dot).
 * Layout at tq: f32 dt, 12 bytes of padding, then rPad bytes (values past r are the bias, 64, meaning 0).
 */
export function lora_quantize_t(t: usize, r: i32, rPad: i32, tq: usize): void {
  let amax: f32 = 0;
  for (let i = 0; i < r; i++) amax = max<f32>(amax, abs<f32>(load<f32>(t + (<usize>i << 2))));
  const dt: f32 = amax / <f32>63;
  const id: f32 = dt != 0 ? <f32>1 / dt : 0;
  store<f32>(tq, dt);
  const q = tq + 16;
  for (let i = 0; i < r; i++) {
    const v = <i32>nearest<f32>(load<f32>(t + (<usize>i << 2)) * id);
    store<u8>(q + <usize>i, <u8>(min<i32>(63, max<i32>(-63, v)) + 64));
  }
  for (let i = r; i < rPad; i++) store<u8>(q + <usize>i, 64);
}

/**
 * i32x4 partial sums of 16 products of int8 B values with t given as biased bytes tb = t + 64: with relaxed
 * SIMD the int8 dot of B and tb (whose operand stays within 0..127 as it requires; the caller takes off 64
 * times the row sum of B), with plain SIMD the bias is taken off the bytes first (at most 2 * 127 * 63 per
 * 16-bit lane). The same integers either way.
 */
// @ts-ignore: decorator
@inline function dotBiased(bv: v128, tb: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(bv, tb, acc);
  } else {
    return dotI8(bv, i8x16.sub(tb, i8x16.splat(64)), acc);
  }
}

/**
 * y[i] += s * dt * dB[i] * (Bq[i] . tq) for `rows` rows: the second half of a low-rank product with B as
 * int8 rows of rPad bytes (rPad a multiple of 16, zero-padded) and t as written by lora_quantize_t. meta
 * holds per row its f32 scale dB and the i32 sum of its int8 values (8 bytes a row). Four rows per step;
 * the integer dots are exact. Keeping the row sums costs 4 bytes a row and measured faster in decoding
 * than a second int8 dot per row.
 */
export function lora_b_q8_acc(b: usize, meta: usize, tq: usize, y: usize, rows: i32, rPad: i32, s: f32): void {
  lora_b_q8_acc_batch(b, meta, tq, 0, y, rows, rPad, s, 1, 0);
}

/**
 * One token's step of lora_b_q8_acc_batch on four rows from p (rows `stride` bytes apart; scales and row sums
 * from m): y[0..4) at yo += s * dt * dB * (Bq . tq). Used by the batch kernel and by the grouped Q4_0 GEMV
 * that applies an adapter's B in its own row pass, so both give the same bits.
 */
// @ts-ignore: decorator
@inline export function loraBq8Rows4(p: usize, stride: usize, m: usize, ti: usize, yo: usize, rPad: i32, s: f32): void {
  const m01 = v128.load(m), m23 = v128.load(m, 16);
  const scales = i32x4.shuffle(m01, m23, 0, 2, 4, 6);
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  for (let c = 0; c < rPad; c += 16) {
    const tb = v128.load(ti + 16 + <usize>c);
    const o = p + <usize>c;
    a0 = dotBiased(v128.load(o), tb, a0);
    a1 = dotBiased(v128.load(o + stride), tb, a1);
    a2 = dotBiased(v128.load(o + 2 * stride), tb, a2);
    a3 = dotBiased(v128.load(o + 3 * stride), tb, a3);
  }
  let tot = sum4I32(a0, a1, a2, a3);
  if (ASC_FEATURE_RELAXED_SIMD) tot = i32x4.sub(tot, i32x4.shl(i32x4.shuffle(m01, m23, 1, 3, 5, 7), 6));
  const dv = f32x4.mul(scales, f32x4.splat(s * load<f32>(ti)));
  v128.store(yo, f32x4.add(v128.load(yo), f32x4.mul(f32x4.convert_i32x4_s(tot), dv)));
}

/** One token's step of lora_b_q8_acc_batch on a single row (rows after the last group of four). */
// @ts-ignore: decorator
@inline export function loraBq8Row1(p: usize, m: usize, ti: usize, yo: usize, rPad: i32, s: f32): void {
  let acc = i32x4.splat(0);
  for (let c = 0; c < rPad; c += 16) acc = dotBiased(v128.load(p + <usize>c), v128.load(ti + 16 + <usize>c), acc);
  let d = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  if (ASC_FEATURE_RELAXED_SIMD) d -= load<i32>(m, 4) << 6;
  store<f32>(yo, load<f32>(yo) + <f32>d * (load<f32>(m) * (s * load<f32>(ti))));
}

/**
 * lora_b_q8_acc for n tokens: token i's quantized t at tq + i*tqStride and its outputs at y + i*yStride*4.
 * Each group of four rows (its int8 values, scales and sums) is read once and applied to every token; a
 * token's results do not depend on the others, so one token alone gets the same bits as in a batch.
 */
export function lora_b_q8_acc_batch(b: usize, meta: usize, tq: usize, tqStride: i32, y: usize, rows: i32, rPad: i32, s: f32, n: i32, yStride: i32): void {
  const stride = <usize>rPad;
  const tS = <usize>tqStride, yS = <usize>yStride << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const p = b + <usize>r * stride;
    const m = meta + (<usize>r << 3);
    if (rPad == 16) {
      // ranks up to 16: the four rows, their scales and sums stay in registers across the tokens
      const m01 = v128.load(m), m23 = v128.load(m, 16);
      const scales = i32x4.shuffle(m01, m23, 0, 2, 4, 6);
      const bias = i32x4.shl(i32x4.shuffle(m01, m23, 1, 3, 5, 7), 6);
      const b0 = v128.load(p), b1 = v128.load(p + stride), b2 = v128.load(p + 2 * stride), b3 = v128.load(p + 3 * stride);
      const zero = i32x4.splat(0);
      for (let i = 0; i < n; i++) {
        const ti = tq + <usize>i * tS;
        const tb = v128.load(ti + 16);
        let tot = sum4I32(dotBiased(b0, tb, zero), dotBiased(b1, tb, zero), dotBiased(b2, tb, zero), dotBiased(b3, tb, zero));
        if (ASC_FEATURE_RELAXED_SIMD) tot = i32x4.sub(tot, bias);
        const yo = y + <usize>i * yS + (<usize>r << 2);
        const dv = f32x4.mul(scales, f32x4.splat(s * load<f32>(ti)));
        v128.store(yo, f32x4.add(v128.load(yo), f32x4.mul(f32x4.convert_i32x4_s(tot), dv)));
      }
      continue;
    }
    for (let i = 0; i < n; i++) loraBq8Rows4(p, stride, m, tq + <usize>i * tS, y + <usize>i * yS + (<usize>r << 2), rPad, s);
  }
  for (; r < rows; r++) {
    const p = b + <usize>r * stride, m = meta + (<usize>r << 3);
    for (let i = 0; i < n; i++) loraBq8Row1(p, m, tq + <usize>i * tS, y + <usize>i * yS + (<usize>r << 2), rPad, s);
  }
}
