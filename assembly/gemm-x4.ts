// Batch products (several tokens) over Q4_0 matrices in the grouped four-row layout: each group is unpacked once into plain rows, then the plain batch kernel runs on them.
import { gemm_q4_0_q8 } from "./gemm";

/** Bytes of one block entry of a group: four f16 scales, then four 16-byte vectors of nibbles. */
const ENTRY: usize = 72;

/** Writes the four plain Q4_0 rows of the group at g (as repack_q4_0x4 arranged them) to dst, one row after another. */
export function unpack_q4_0x4_group(g: usize, dst: usize, cols: i32): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  for (let b = 0; b < nb; b++) {
    const o = g + <usize>b * ENTRY;
    for (let k = 0; k < 4; k++) store<u16>(dst + <usize>k * rowBytes + <usize>b * 18, load<u16>(o + (<usize>k << 1)));
    // bytes 4j..4j+3 of row k sit in lane j of vector m, where (j + m) mod 4 = k
    for (let m = 0; m < 4; m++) {
      for (let j = 0; j < 4; j++) {
        const k = (j + m) & 3;
        store<u32>(dst + <usize>k * rowBytes + <usize>b * 18 + 2 + (<usize>j << 2), load<u32>(o + 8 + (<usize>m << 4) + (<usize>j << 2)));
      }
    }
  }
}

/**
 * gemm_q4_0_q8 for a matrix in the grouped layout (rows [0, rows) of it, the first a group boundary): every
 * group of four rows is unpacked into `scratch` (4 * cols / 32 * 18 bytes) and multiplied there, so each
 * token's results are those of the plain kernel, bit for bit. Rows past the last whole group are plain already.
 */
export function gemm_q4_0x4_q8(w: usize, qx: usize, dx: usize, xs: usize, y: usize, rows: i32, cols: i32, n: i32, yStride: i32, scratch: usize): void {
  const rowBytes = <usize>(cols >> 5) * 18;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    unpack_q4_0x4_group(w + <usize>r * rowBytes, scratch, cols);
    gemm_q4_0_q8(scratch, qx, dx, xs, y + (<usize>r << 2), 4, cols, n, yStride);
  }
  if (r < rows) gemm_q4_0_q8(w + <usize>r * rowBytes, qx, dx, xs, y + (<usize>r << 2), rows - r, cols, n, yStride);
}
