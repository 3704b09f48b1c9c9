// Batch products (several tokens) over Q4_0 matrices in the grouped four-row layout: each group is unpacked once into plain rows, then the plain batch kernel runs on them.
import { gemm_q4_0_q8 } from "./gemm";
import { pickLanes } from "./blocks";
import { keep } from "./gemv";

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
 * gemm_q4_0_q8 for a matrix in the grouped layout (rows [0, rows) of it, the first a group boundary): every
 * group of four rows is unpacked into `scratch` (4 * cols / 32 * 18 bytes) and multiplied there, so each
 * token's results are those of the plain kernel, bit for bit. Rows past the last whole group are plain already.
 */
export function gemm_q4_0x4_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize): void {
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
