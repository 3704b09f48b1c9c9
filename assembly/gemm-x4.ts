// Batch products (several tokens) over Q4_0 matrices in the grouped four-row layout: each block entry is loaded and split once and dotted with four tokens' x.
import { gemm_q4_0_q8 } from "./gemm";
import { pickLanes } from "./blocks";
import { keep } from "./gemv";
import { fmaF32, lowNib, highNib } from "./simd";
import { scales4, dot4RowsNib, touchAhead } from "./x4-dot";
import { gemv_q4_0x4_q8 } from "./gemv-x4";
import { f32Rows4, f32Row1, f32MainBytes } from "./rows-f32";
import { loraBq8Rows4, loraBq8Row1 } from "./lora-q8";

/** Bytes of one block entry of a group: four f16 scales, then four 16-byte vectors of nibbles. */
const ENTRY: usize = 72;

/** Writes the four plain Q4_0 rows of the group at g (as repack_q4_0x4 arranged them) to dst, one row after another. */
export function unpack_q4_0x4_group(g: usize, dst: usize, cols: i32): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  const d1 = dst + rowBytes, d2 = d1 + rowBytes, d3 = d2 + rowBytes;
  for (let b = 0; b < nb; b++) {
    const o = g + <usize>b * ENTRY, ob = <usize>b * 18;
    store<u16>(dst + ob, load<u16>(o));
    store<u16>(d1 + ob, load<u16>(o, 2));
    store<u16>(d2 + ob, load<u16>(o, 4));
    store<u16>(d3 + ob, load<u16>(o, 6));
    // bytes 4j..4j+3 of row k sit in lane j of vector (k - j) mod 4
    const v0 = v128.load(o, 8), v1 = v128.load(o, 24), v2 = v128.load(o, 40), v3 = v128.load(o, 56);
    v128.store(dst + ob, pickLanes(v0, v3, v2, v1), 2);
    v128.store(d1 + ob, pickLanes(v1, v0, v3, v2), 2);
    v128.store(d2 + ob, pickLanes(v2, v1, v0, v3), 2);
    v128.store(d3 + ob, pickLanes(v3, v2, v1, v0), 2);
  }
}

/**
 * Q4_0 in the grouped layout against n tokens of 8-bit x (token t's qx at qx + t*cols, its dx and xs at
 * t*(cols/32)*4; results at y + (t*yStride + r)*4). Each group's block entries are loaded and split into
 * nibbles once per four tokens (one or two tokens past the last four run gemv_q4_0x4_q8 each); for every token the float steps are gemv_q4_0x4_q8's (so gemv_q4_0_q8's on
 * the plain rows), bit for bit: per group, accumulator j takes blocks b = j mod 4 in order, then
 * (a0 + a1) + (a2 + a3) minus 8 times the x-sum correction, summed the same way. `scratch` holds 512 bytes
 * (the four passes' partial sums of four tokens), or four plain rows (4 * cols / 32 * 18 bytes) when cols/32
 * is no multiple of 4: such matrices unpack each group and run the plain batch kernel. Rows after the last
 * whole group are plain already.
 */
export function gemm_q4_0x4_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize): void {
  gemmQ4_0x4(w, qx, dx, xs, y, rows, cols, n, yStride, scratch, 0);
}

/**
 * gemm_q4_0x4_q8, then for every token with an adapter term in `terms` (n entries of TERM_BYTES, token i's at
 * terms + i * TERM_BYTES) y += s * B t on that token's row of results, each group's B rows applied right after
 * the group's weights (while the weights of the batch are read, B's are read too, instead of in a pass of
 * their own). Bit for bit the base product then the term's B kernel (gemm_f32_acc or lora_b_q8_acc_batch).
 * An entry: u32 kind (0: no term, 1: f32 B of `rank` values a row, 2: int8 B of rPad bytes a row with its
 * meta), u32 B at row 0 of these rows, u32 meta at row 0 (int8 B), u32 t (f32, or as lora_quantize_t wrote
 * it), i32 rank or rPad, f32 s.
 */
export function gemm_q4_0x4_q8_lora(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize, terms: usize): void {
  gemmQ4_0x4(w, qx, dx, xs, y, rows, cols, n, yStride, scratch, terms);
}

/** Bytes of one token's entry in gemm_q4_0x4_q8_lora's term table. */
const TERM_BYTES: usize = 24;

/** The batch kernel's body; terms == 0 (a constant in gemm_q4_0x4_q8) applies no adapter. */
// @ts-ignore: decorator
@inline function gemmQ4_0x4(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize, terms: usize): void {
  const nb = cols >> 5;
  if ((nb & 3) != 0) {
    gemmUnpacked(w, qx, dx, xs, y, rows, cols, n, yStride, scratch);
    if (terms != 0) for (let t = 0; t < n; t++) termRows(terms, t, 0, rows, y + <usize>t * (<usize>yStride << 2));
    return;
  }
  const groupBytes = <usize>nb * ENTRY, rowBytes = <usize>nb * 18;
  const xStride = <usize>cols, sStride = <usize>nb << 2, yS = <usize>yStride << 2;
  const full = rows & ~3;
  const last = w + <usize>(full >> 2) * groupBytes - 1;
  // tiles of four tokens (three left: a tile repeating the last); one or two left: the single-token kernel each
  const tiled = (n & 3) == 3 ? n : n & ~3;
  let touch: u32 = 0;
  for (let r = 0; r < full && tiled > 0; r += 4) {
    const g = w + <usize>(r >> 2) * groupBytes;
    for (let t = 0; t < tiled; t += 4) {
      const i0 = tok(t, 0, tiled), i1 = tok(t, 1, tiled), i2 = tok(t, 2, tiled), i3 = tok(t, 3, tiled);
      const x0 = qx + i0 * xStride, x1 = qx + i1 * xStride, x2 = qx + i2 * xStride, x3 = qx + i3 * xStride;
      const d0 = dx + i0 * sStride, d1 = dx + i1 * sStride, d2 = dx + i2 * sStride, d3 = dx + i3 * sStride;
      const s0 = xs + i0 * sStride, s1 = xs + i1 * sStride, s2 = xs + i2 * sStride, s3 = xs + i3 * sStride;
      // pass j: blocks j, j+4, ... of every token; its four sums (one f32x4 per token) go to scratch + 64 j
      for (let j = 0; j < 4; j++) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let b = j; b < nb; b += 4) {
          const p = g + <usize>b * ENTRY;
          // the first pass of a group starts the cache misses of the weights ahead (as gemv_q4_0x4_q8)
          if (j == 0 && t == 0) touch += touchAhead(p, last);
          const d = scales4(p);
          const v0 = v128.load(p, 8), v1 = v128.load(p, 24), v2 = v128.load(p, 40), v3 = v128.load(p, 56);
          const l0 = lowNib(v0), h0 = highNib(v0), l1 = lowNib(v1), h1 = highNib(v1);
          const l2 = lowNib(v2), h2 = highNib(v2), l3 = lowNib(v3), h3 = highNib(v3);
          const xo = <usize>b << 5, bo = <usize>b << 2;
          a0 = fmaF32(a0, f32x4.convert_i32x4_s(dot4RowsNib(l0, h0, l1, h1, l2, h2, l3, h3, x0 + xo)), f32x4.mul(d, v128.load32_splat(d0 + bo)));
          a1 = fmaF32(a1, f32x4.convert_i32x4_s(dot4RowsNib(l0, h0, l1, h1, l2, h2, l3, h3, x1 + xo)), f32x4.mul(d, v128.load32_splat(d1 + bo)));
          a2 = fmaF32(a2, f32x4.convert_i32x4_s(dot4RowsNib(l0, h0, l1, h1, l2, h2, l3, h3, x2 + xo)), f32x4.mul(d, v128.load32_splat(d2 + bo)));
          a3 = fmaF32(a3, f32x4.convert_i32x4_s(dot4RowsNib(l0, h0, l1, h1, l2, h2, l3, h3, x3 + xo)), f32x4.mul(d, v128.load32_splat(d3 + bo)));
        }
        const o = scratch + (<usize>j << 6);
        v128.store(o, a0);
        v128.store(o, a1, 16);
        v128.store(o, a2, 32);
        v128.store(o, a3, 48);
      }
      // the x-sum corrections, summed as the dots are
      for (let j = 0; j < 4; j++) {
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        for (let b = j; b < nb; b += 4) {
          const d = scales4(g + <usize>b * ENTRY);
          const bo = <usize>b << 2;
          c0 = fmaF32(c0, d, v128.load32_splat(s0 + bo));
          c1 = fmaF32(c1, d, v128.load32_splat(s1 + bo));
          c2 = fmaF32(c2, d, v128.load32_splat(s2 + bo));
          c3 = fmaF32(c3, d, v128.load32_splat(s3 + bo));
        }
        const o = scratch + 256 + (<usize>j << 6);
        v128.store(o, c0);
        v128.store(o, c1, 16);
        v128.store(o, c2, 32);
        v128.store(o, c3, 48);
      }
      const yr = y + (<usize>r << 2);
      v128.store(yr + i0 * yS, groupResult(scratch, 0));
      v128.store(yr + i1 * yS, groupResult(scratch, 16));
      v128.store(yr + i2 * yS, groupResult(scratch, 32));
      v128.store(yr + i3 * yS, groupResult(scratch, 48));
      // the tile's tokens' terms on these four rows (a repeated last token only once)
      if (terms != 0) for (let k = 0; k < 4 && t + k < tiled; k++) termRows(terms, t + k, r, r + 4, yr + <usize>(t + k) * yS);
    }
  }
  keep(touch, y);
  if (full < rows && tiled > 0) {
    gemm_q4_0_q8(w + <usize>full * rowBytes, qx, dx, xs, y + (<usize>full << 2), rows - full, cols, tiled, yStride);
    if (terms != 0) for (let t = 0; t < tiled; t++) termRows(terms, t, full, rows, y + <usize>t * yS + (<usize>full << 2));
  }
  for (let t = tiled; t < n; t++) {
    gemv_q4_0x4_q8(w, qx + <usize>t * xStride, dx + <usize>t * sStride, xs + <usize>t * sStride, y + <usize>t * yS, rows, cols);
    if (terms != 0) termRows(terms, t, 0, rows, y + <usize>t * yS);
  }
}

/**
 * y[r0..r1) at yo (token i's results of rows r0..r1) += s * B t for token i's entry in the term table, four
 * rows per step then one by one; each row's value is that of gemm_f32_acc (f32 B) or lora_b_q8_acc_batch
 * (int8 B), whatever rows it is taken with.
 */
function termRows(terms: usize, i: i32, r0: i32, r1: i32, yo: usize): void {
  const e = terms + <usize>i * TERM_BYTES;
  const kind = load<u32>(e);
  if (kind == 0) return;
  const b = <usize>load<u32>(e, 4), meta = <usize>load<u32>(e, 8), t = <usize>load<u32>(e, 12);
  const rank = load<i32>(e, 16), s = load<f32>(e, 20);
  if (kind == 1) {
    const stride = <usize>rank << 2, main = f32MainBytes(rank), sv = f32x4.splat(s);
    let r = r0;
    for (; r + 4 <= r1; r += 4) f32Rows4(b + <usize>r * stride, stride, t, main, yo + (<usize>(r - r0) << 2), sv, true);
    for (; r < r1; r++) f32Row1(b + <usize>r * stride, stride, t, main, yo + (<usize>(r - r0) << 2), s, true);
  } else {
    const stride = <usize>rank;
    let r = r0;
    for (; r + 4 <= r1; r += 4) loraBq8Rows4(b + <usize>r * stride, stride, meta + (<usize>r << 3), t, yo + (<usize>(r - r0) << 2), rank, s);
    for (; r < r1; r++) loraBq8Row1(b + <usize>r * stride, meta + (<usize>r << 3), t, yo + (<usize>(r - r0) << 2), rank, s);
  }
}

/** Token k's four rows from the passes' sums in scratch (k = 16 * token): (a0 + a1) + (a2 + a3) - 8 ((c0 + c1) + (c2 + c3)). */
// @ts-ignore: decorator
@inline function groupResult(scratch: usize, k: usize): v128 {
  const p = scratch + k;
  const a = f32x4.add(f32x4.add(v128.load(p), v128.load(p, 64)), f32x4.add(v128.load(p, 128), v128.load(p, 192)));
  const c = f32x4.add(f32x4.add(v128.load(p, 256), v128.load(p, 320)), f32x4.add(v128.load(p, 384), v128.load(p, 448)));
  return f32x4.sub(a, f32x4.mul(f32x4.splat(8), c));
}

/** Token i of a tile of four starting at t, clamped to the last of n tokens (the repeats write the same values again). */
// @ts-ignore: decorator
@inline function tok(t: i32, i: i32, n: i32): usize {
  return <usize>min<i32>(t + i, n - 1);
}

/**
 * The grouped batch product for cols/32 not a multiple of 4: every group of four rows is unpacked into
 * `scratch` (4 * cols / 32 * 18 bytes) and multiplied there by the plain batch kernel, so each token's results
 * are those of the plain kernel, bit for bit.
 */
function gemmUnpacked(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize): void {
  const rowBytes = <usize>(cols >> 5) * 18, groupBytes = rowBytes << 2;
  const full = rows & ~3;
  let touch: u32 = 0;
  let r = 0;
  for (; r < full; r += 4) {
    const g = w + <usize>r * rowBytes;
    unpack_q4_0x4_group(g, scratch, cols);
    // the next group's lines are requested now and arrive while this group's tokens are computed
    if (r + 4 < full) for (let o: usize = 0; o < groupBytes; o += 64) touch += <u32>load<u8>(g + groupBytes + o);
    gemm_q4_0_q8(scratch, qx, dx, xs, y + (<usize>r << 2), 4, cols, n, yStride);
  }
  keep(touch, y);
  if (r < rows) gemm_q4_0_q8(w + <usize>r * rowBytes, qx, dx, xs, y + (<usize>r << 2), rows - r, cols, n, yStride);
}
