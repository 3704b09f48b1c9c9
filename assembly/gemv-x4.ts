// Q4_0 rows repacked in groups of four (scales side by side, packed bytes interleaved) and their 8-bit-x GEMV, four rows per pass.
import { gemv_q4_0_q8, keep } from "./gemv";
import { lowNib, highNib, fmaF32, dotNib32, hsumF32 } from "./simd";
import { f16ToF32 } from "./half";
import { f32Rows4, f32Row1, f32MainBytes } from "./rows-f32";
import { pickLanes } from "./blocks";
import { loraBq8Rows4, loraBq8Row1 } from "./lora-q8";
import { scales4, touchAhead } from "./x4-dot";

/*
 * Layout of a group (four consecutive rows), one 72-byte entry per 32-value block b, blocks in order:
 *   bytes 0..7    the four rows' f16 scales d, row 0 first;
 *   bytes 8..71   four 16-byte vectors V0..V3: 32-bit lane j of Vm holds packed bytes 4j..4j+3 of row (j + m) mod 4.
 * Packed byte i of a Q4_0 row holds value i (low nibble) and value 16+i (high nibble), so lane j of the low
 * nibbles of Vm meets x values 4j..4j+3 and lane j of the high nibbles x values 16+4j..19+4j: two plain int8
 * dots with the block's x halves give, in lane j, row (j + m) mod 4's partial sums; rotating the four results
 * by m lanes lines the rows up. A group takes the bytes its four rows took (4 * nb * 18); rows after the last
 * full group keep the plain Q4_0 layout, so row r0 (a multiple of 4) still starts at w + r0 * rowBytes.
 */

/** Bytes of one group-block entry: four f16 scales and 4 x 16 packed bytes. */
const ENTRY: usize = 72;

/** Rearranges Q4_0 rows in place into the grouped layout above; scratch holds four rows (4 * cols / 32 * 18 bytes). */
export function repack_q4_0x4(w: usize, rows: i32, cols: i32, scratch: usize): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  for (let r = 0; r + 4 <= rows; r += 4) {
    const p = w + <usize>r * rowBytes;
    memory.copy(scratch, p, rowBytes << 2);
    for (let b = 0; b < nb; b++) {
      const o = p + <usize>b * ENTRY;
      for (let k = 0; k < 4; k++) store<u16>(o + (<usize>k << 1), load<u16>(scratch + <usize>k * rowBytes + <usize>b * 18));
      for (let m = 0; m < 4; m++) {
        for (let j = 0; j < 4; j++) {
          const k = (j + m) & 3;
          store<u32>(o + 8 + (<usize>m << 4) + (<usize>j << 2), load<u32>(scratch + <usize>k * rowBytes + <usize>b * 18 + 2 + (<usize>j << 2)));
        }
      }
    }
  }
}

/**
 * Integer dots of one block entry's four rows (64 packed bytes at q) with the 32 int8 x at xo: lane k is row
 * k's sum of nibble * x. 16-bit lanes: each holds at most 16 products of 15 * 128 (30720) before widening.
 */
// @ts-ignore: decorator
@inline function dot4Rows(q: usize, xo: usize): v128 {
  const xl = v128.load(xo), xh = v128.load(xo, 16);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const r0 = dotHalves(v128.load(q), xl, xh);
    const r1 = dotHalves(v128.load(q, 16), xl, xh);
    const r2 = dotHalves(v128.load(q, 32), xl, xh);
    const r3 = dotHalves(v128.load(q, 48), xl, xh);
    // lane j of r_m belongs to row (j + m) mod 4: rotate by m so that lane k is row k
    const s = i16x8.add(i16x8.add(r0, i32x4.shuffle(r1, r1, 3, 0, 1, 2)), i16x8.add(i32x4.shuffle(r2, r2, 2, 3, 0, 1), i32x4.shuffle(r3, r3, 1, 2, 3, 0)));
    return i32x4.extadd_pairwise_i16x8_s(s);
  } else {
    const r0 = dotHalves32(v128.load(q), xl, xh);
    const r1 = dotHalves32(v128.load(q, 16), xl, xh);
    const r2 = dotHalves32(v128.load(q, 32), xl, xh);
    const r3 = dotHalves32(v128.load(q, 48), xl, xh);
    return i32x4.add(i32x4.add(r0, i32x4.shuffle(r1, r1, 3, 0, 1, 2)), i32x4.add(i32x4.shuffle(r2, r2, 2, 3, 0, 1), i32x4.shuffle(r3, r3, 1, 2, 3, 0)));
  }
}

/** i16x8 pair sums of lowNib(v) * xl + highNib(v) * xh (relaxed int8 dot; nibbles are the 7-bit operand). */
// @ts-ignore: decorator
@inline function dotHalves(v: v128, xl: v128, xh: v128): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, lowNib(v)), i16x8.relaxed_dot_i8x16_i7x16_s(xh, highNib(v)));
}

/** i32x4 sums of lowNib(v) * xl + highNib(v) * xh over each 32-bit lane's four bytes (plain SIMD). */
// @ts-ignore: decorator
@inline function dotHalves32(v: v128, xl: v128, xh: v128): v128 {
  const lo = lowNib(v), hi = highNib(v);
  const a = i16x8.add(i16x8.extmul_low_i8x16_s(lo, xl), i16x8.extmul_low_i8x16_s(hi, xh));
  const b = i16x8.add(i16x8.extmul_high_i8x16_s(lo, xl), i16x8.extmul_high_i8x16_s(hi, xh));
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(i32x4.shuffle(a, b, 0, 2, 4, 6)), i32x4.extadd_pairwise_i16x8_s(i32x4.shuffle(a, b, 1, 3, 5, 7)));
}

/**
 * Q4_0 in the grouped layout with 8-bit x (qx int8, dx scales, xs block sums, as gemv_q4_0_q8 takes them):
 * four rows per pass, one f32x4 out per group. Per row it performs gemv_q4_0_q8's float operations in its
 * order (blocks b = j mod 4 summed in accumulator j, then (a0 + a1) + (a2 + a3), minus 8 times the x-sum
 * correction; a remainder of cols/32 mod 4 blocks as groupTail describes) on the same exact integer dots,
 * so the results are bit-identical with gemv_q4_0_q8's on the plain rows, in every build. Rows after the
 * last full group run gemv_q4_0_q8 on their plain layout.
 */
export function gemv_q4_0x4_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32): void {
  gemvQ4_0x4(w, qx, dx, xs, y, rows, cols, NO_ADAPTER, 0, 0, 0, 0, 0);
}

/**
 * gemv_q4_0x4_q8, then y += s * B t for one adapter in the same row pass, each group's B rows right after
 * its weights: B as f32 rows of `rank` values (lb; t at lt, f32), as gemv_f32_acc computes it.
 */
export function gemv_q4_0x4_q8_lora_f32(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, lb: usize, lt: usize, rank: i32, s: f32): void {
  gemvQ4_0x4(w, qx, dx, xs, y, rows, cols, F32_ADAPTER, lb, 0, lt, rank, s);
}

/** The same with B as int8 rows of rPad bytes and their meta (lb, lm; quantized t at lt), as lora_b_q8_acc computes it. */
export function gemv_q4_0x4_q8_lora_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, lb: usize, lm: usize, lt: usize, rPad: i32, s: f32): void {
  gemvQ4_0x4(w, qx, dx, xs, y, rows, cols, Q8_ADAPTER, lb, lm, lt, rPad, s);
}

const NO_ADAPTER = 0, F32_ADAPTER = 1, Q8_ADAPTER = 2;

/** The grouped kernel's body; `adapter` is a constant at each call, so each export keeps only its own branch. */
// @ts-ignore: decorator
@inline function gemvQ4_0x4(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, adapter: i32, lb: usize, lm: usize, lt: usize, rank: i32, s: f32): void {
  const lStride: usize = adapter == F32_ADAPTER ? <usize>rank << 2 : <usize>rank;
  const lMain = f32MainBytes(rank), sv = f32x4.splat(s);
  const nb = cols >> 5;
  const main = nb & ~3;
  const groupBytes = <usize>nb * ENTRY;
  const full = rows & ~3;
  const last = w + <usize>(full >> 2) * groupBytes - 1;
  let touch: u32 = 0;
  for (let r = 0; r < full; r += 4) {
    const g = w + <usize>(r >> 2) * groupBytes;
    // Four passes over the group, pass j taking blocks j, j+4, ... into its own accumulators, summed as
    // (a0 + a1) + (a2 + a3) as soon as each pair is done: few vectors stay live across the passes.
    let a0 = f32x4.splat(0), c0 = f32x4.splat(0);
    for (let b = 0; b < main; b += 4) {
      const p = g + <usize>b * ENTRY;
      touch += touchAhead(p, last);
      const d = scales4(p);
      a0 = fmaF32(a0, blockDot(p, qx, b), f32x4.mul(d, v128.load32_splat(dx + (<usize>b << 2))));
      c0 = fmaF32(c0, d, v128.load32_splat(xs + (<usize>b << 2)));
    }
    let a1 = f32x4.splat(0), c1 = f32x4.splat(0);
    for (let b = 1; b < main; b += 4) {
      const p = g + <usize>b * ENTRY;
      const d = scales4(p);
      a1 = fmaF32(a1, blockDot(p, qx, b), f32x4.mul(d, v128.load32_splat(dx + (<usize>b << 2))));
      c1 = fmaF32(c1, d, v128.load32_splat(xs + (<usize>b << 2)));
    }
    const a01 = f32x4.add(a0, a1), c01 = f32x4.add(c0, c1);
    let a2 = f32x4.splat(0), c2 = f32x4.splat(0);
    for (let b = 2; b < main; b += 4) {
      const p = g + <usize>b * ENTRY;
      const d = scales4(p);
      a2 = fmaF32(a2, blockDot(p, qx, b), f32x4.mul(d, v128.load32_splat(dx + (<usize>b << 2))));
      c2 = fmaF32(c2, d, v128.load32_splat(xs + (<usize>b << 2)));
    }
    let a3 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let b = 3; b < main; b += 4) {
      const p = g + <usize>b * ENTRY;
      const d = scales4(p);
      a3 = fmaF32(a3, blockDot(p, qx, b), f32x4.mul(d, v128.load32_splat(dx + (<usize>b << 2))));
      c3 = fmaF32(c3, d, v128.load32_splat(xs + (<usize>b << 2)));
    }
    const c = f32x4.add(c01, f32x4.add(c2, c3));
    if (main == nb) {
      v128.store(y + (<usize>r << 2), f32x4.sub(f32x4.add(a01, f32x4.add(a2, a3)), f32x4.mul(f32x4.splat(8), c)));
    } else {
      groupTail(g, qx, dx, xs, y + (<usize>r << 2), a0, a1, a2, a3, c, main, nb);
    }
    if (adapter == F32_ADAPTER) f32Rows4(lb + <usize>r * lStride, lStride, lt, lMain, y + (<usize>r << 2), sv, true);
    if (adapter == Q8_ADAPTER) loraBq8Rows4(lb + <usize>r * lStride, lStride, lm + (<usize>r << 3), lt, y + (<usize>r << 2), rank, s);
  }
  keep(touch, y);
  if (full < rows) gemv_q4_0_q8(w + <usize>full * <usize>nb * 18, qx, dx, xs, y + (<usize>full << 2), rows - full, cols);
  for (let r = full; r < rows; r++) {
    if (adapter == F32_ADAPTER) f32Row1(lb + <usize>r * lStride, lStride, lt, lMain, y + (<usize>r << 2), s, true);
    if (adapter == Q8_ADAPTER) loraBq8Row1(lb + <usize>r * lStride, lm + (<usize>r << 3), lt, y + (<usize>r << 2), rank, s);
  }
}

/** Block b's integer dots of a group entry at p, as f32x4 (one lane per row; exact). */
// @ts-ignore: decorator
@inline function blockDot(p: usize, qx: usize, b: i32): v128 {
  return f32x4.convert_i32x4_s(dot4Rows(p + 8, qx + (<usize>b << 5)));
}

/**
 * Blocks main..nb-1 of a group (cols/32 not a multiple of 4) in gemv_q4_0_q8's own order: each row's
 * accumulator vector (lane j: its blocks b = j mod 4) is taken out of a0..a3 by a transpose, the remaining
 * blocks are added to its lanes as that kernel's partial sums, and the lanes are summed last; c holds the
 * rows' x-sum corrections so far.
 */
function groupTail(g: usize, qx: usize, dx: usize, xs: usize, y: usize, a0: v128, a1: v128, a2: v128, a3: v128, c: v128, main: i32, nb: i32): void {
  const t0 = i32x4.shuffle(a0, a1, 0, 4, 1, 5), t1 = i32x4.shuffle(a2, a3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(a0, a1, 2, 6, 3, 7), t3 = i32x4.shuffle(a2, a3, 2, 6, 3, 7);
  let r0 = i64x2.shuffle(t0, t1, 0, 2), r1 = i64x2.shuffle(t0, t1, 1, 3);
  let r2 = i64x2.shuffle(t2, t3, 0, 2), r3 = i64x2.shuffle(t2, t3, 1, 3);
  for (let b = main; b < nb; b++) {
    const p = g + <usize>b * ENTRY;
    const xo = qx + (<usize>b << 5);
    const x0 = v128.load(xo), x1 = v128.load(xo, 16);
    const db = load<f32>(dx + (<usize>b << 2));
    const v0 = v128.load(p, 8), v1 = v128.load(p, 24), v2 = v128.load(p, 40), v3 = v128.load(p, 56);
    // row k's packed bytes 4j..4j+3 sit in lane j of V((k - j) mod 4)
    const q0 = pickLanes(v0, v3, v2, v1), q1 = pickLanes(v1, v0, v3, v2), q2 = pickLanes(v2, v1, v0, v3), q3 = pickLanes(v3, v2, v1, v0);
    r0 = fmaF32(r0, f32x4.convert_i32x4_s(dotNib32(lowNib(q0), x0, highNib(q0), x1)), f32x4.splat(f16ToF32(load<u16>(p)) * db));
    r1 = fmaF32(r1, f32x4.convert_i32x4_s(dotNib32(lowNib(q1), x0, highNib(q1), x1)), f32x4.splat(f16ToF32(load<u16>(p, 2)) * db));
    r2 = fmaF32(r2, f32x4.convert_i32x4_s(dotNib32(lowNib(q2), x0, highNib(q2), x1)), f32x4.splat(f16ToF32(load<u16>(p, 4)) * db));
    r3 = fmaF32(r3, f32x4.convert_i32x4_s(dotNib32(lowNib(q3), x0, highNib(q3), x1)), f32x4.splat(f16ToF32(load<u16>(p, 6)) * db));
    c = fmaF32(c, scales4(p), v128.load32_splat(xs + (<usize>b << 2)));
  }
  store<f32>(y, hsumF32(r0) - <f32>8 * f32x4.extract_lane(c, 0));
  store<f32>(y, hsumF32(r1) - <f32>8 * f32x4.extract_lane(c, 1), 4);
  store<f32>(y, hsumF32(r2) - <f32>8 * f32x4.extract_lane(c, 2), 8);
  store<f32>(y, hsumF32(r3) - <f32>8 * f32x4.extract_lane(c, 3), 12);
}
