// Transposed products for the backward pass, dX += dY W, reading W's quantized blocks directly: four rows decoded at a time into a small scratch.
import { f16_to_f32 } from "./half";
import { dequant_q4_0, dequant_q8_0, dequant_q4_k, dequant_q6_k } from "./dequant";

/**
 * Row pointer of decoded row k of the group: F32 rows are read in place, other types decoded into scratch
 * (four rows of cols f32). kind: the ggml type id.
 */
// @ts-ignore: decorator
@inline function decodeRow(kind: i32, p: usize, cols: i32, dst: usize): usize {
  if (kind == 0) return p;
  if (kind == 1) f16_to_f32(p, dst, cols);
  else if (kind == 2) dequant_q4_0(p, dst, cols >> 5);
  else if (kind == 8) dequant_q8_0(p, dst, cols >> 5);
  else if (kind == 12) dequant_q4_k(p, dst, cols >> 8);
  else dequant_q6_k(p, dst, cols >> 8);
  return dst;
}

/**
 * dx[t, c] += sum_o dy[t, o] w[o, c] for t < n, c < cols, o < rows. Rows are taken four at a time: each dx value
 * becomes dx + ((g0 w0 + g1 w1) + (g2 w2 + g3 w3)); the last rows % 4 one at a time, dx + g w (f32 throughout).
 * w points at column 0 of row 0; rowBytes is W's full row stride, so a call may cover a slice of columns.
 */
// @ts-ignore: decorator
@inline function gemmT(kind: i32, w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void {
  const rb = <usize>cols << 2;
  const c4 = cols & ~3;
  let o = 0;
  for (; o + 4 <= rows; o += 4) {
    const p = w + <usize>o * rowBytes;
    const r0 = decodeRow(kind, p, cols, scratch);
    const r1 = decodeRow(kind, p + rowBytes, cols, scratch + rb);
    const r2 = decodeRow(kind, p + 2 * rowBytes, cols, scratch + 2 * rb);
    const r3 = decodeRow(kind, p + 3 * rowBytes, cols, scratch + 3 * rb);
    let t = 0;
    // two rows of dx at a time: each decoded weight vector is loaded once for both
    for (; t + 2 <= n; t += 2) {
      const gp = dy + ((<usize>t * dyStride + o) << 2), hp = gp + (<usize>dyStride << 2);
      const g0 = f32x4.splat(load<f32>(gp)), g1 = f32x4.splat(load<f32>(gp, 4)), g2 = f32x4.splat(load<f32>(gp, 8)), g3 = f32x4.splat(load<f32>(gp, 12));
      const h0 = f32x4.splat(load<f32>(hp)), h1 = f32x4.splat(load<f32>(hp, 4)), h2 = f32x4.splat(load<f32>(hp, 8)), h3 = f32x4.splat(load<f32>(hp, 12));
      const xo = dx + ((<usize>t * dxStride) << 2), yo = xo + (<usize>dxStride << 2);
      let c = 0;
      for (; c < c4; c += 4) {
        const b = <usize>c << 2;
        const w0 = v128.load(r0 + b), w1 = v128.load(r1 + b), w2 = v128.load(r2 + b), w3 = v128.load(r3 + b);
        const a = f32x4.add(f32x4.mul(g0, w0), f32x4.mul(g1, w1)), e = f32x4.add(f32x4.mul(g2, w2), f32x4.mul(g3, w3));
        v128.store(xo + b, f32x4.add(v128.load(xo + b), f32x4.add(a, e)));
        const a2 = f32x4.add(f32x4.mul(h0, w0), f32x4.mul(h1, w1)), e2 = f32x4.add(f32x4.mul(h2, w2), f32x4.mul(h3, w3));
        v128.store(yo + b, f32x4.add(v128.load(yo + b), f32x4.add(a2, e2)));
      }
      for (; c < cols; c++) {
        const b = <usize>c << 2;
        const w0 = load<f32>(r0 + b), w1 = load<f32>(r1 + b), w2 = load<f32>(r2 + b), w3 = load<f32>(r3 + b);
        store<f32>(xo + b, load<f32>(xo + b) + ((load<f32>(gp) * w0 + load<f32>(gp, 4) * w1) + (load<f32>(gp, 8) * w2 + load<f32>(gp, 12) * w3)));
        store<f32>(yo + b, load<f32>(yo + b) + ((load<f32>(hp) * w0 + load<f32>(hp, 4) * w1) + (load<f32>(hp, 8) * w2 + load<f32>(hp, 12) * w3)));
      }
    }
    for (; t < n; t++) {
      const gp = dy + ((<usize>t * dyStride + o) << 2);
      const s0 = load<f32>(gp), s1 = load<f32>(gp, 4), s2 = load<f32>(gp, 8), s3 = load<f32>(gp, 12);
      const g0 = f32x4.splat(s0), g1 = f32x4.splat(s1), g2 = f32x4.splat(s2), g3 = f32x4.splat(s3);
      const xo = dx + ((<usize>t * dxStride) << 2);
      let c = 0;
      for (; c < c4; c += 4) {
        const b = <usize>c << 2;
        const a = f32x4.add(f32x4.mul(g0, v128.load(r0 + b)), f32x4.mul(g1, v128.load(r1 + b)));
        const e = f32x4.add(f32x4.mul(g2, v128.load(r2 + b)), f32x4.mul(g3, v128.load(r3 + b)));
        v128.store(xo + b, f32x4.add(v128.load(xo + b), f32x4.add(a, e)));
      }
      for (; c < cols; c++) {
        const b = <usize>c << 2;
        const a = s0 * load<f32>(r0 + b) + s1 * load<f32>(r1 + b);
        const e = s2 * load<f32>(r2 + b) + s3 * load<f32>(r3 + b);
        store<f32>(xo + b, load<f32>(xo + b) + (a + e));
      }
    }
  }
  for (; o < rows; o++) {
    const r0 = decodeRow(kind, w + <usize>o * rowBytes, cols, scratch);
    for (let t = 0; t < n; t++) {
      const s0 = load<f32>(dy + ((<usize>t * dyStride + o) << 2));
      const g0 = f32x4.splat(s0);
      const xo = dx + ((<usize>t * dxStride) << 2);
      let c = 0;
      for (; c < c4; c += 4) {
        const b = <usize>c << 2;
        v128.store(xo + b, f32x4.add(v128.load(xo + b), f32x4.mul(g0, v128.load(r0 + b))));
      }
      for (; c < cols; c++) {
        const b = <usize>c << 2;
        store<f32>(xo + b, load<f32>(xo + b) + s0 * load<f32>(r0 + b));
      }
    }
  }
}

/** Rows of dx per tile: their dy lines stay cached across the row groups (on a 32000 x 288 Q4_0 matrix and 63 rows, one thread: 43 ms at 32 rows a tile, 45-50 at 16, 53-58 at 8), even at strides that map to few cache sets. */
const TILE_ROWS = 32;
/** Columns per tile (whole blocks): a tile of dx (TILE_ROWS x TILE_COLS f32) and four decoded rows stay in L1. */
const TILE_COLS = 384;

/**
 * gemmT over tiles of TILE_ROWS rows of dx and about TILE_COLS columns (whole blocks of bs columns, ts bytes):
 * each dx value gets the same additions in the same order as in one untiled pass (row groups in order), so the
 * result is gemmT's bit for bit; only the weights are decoded once per tile instead of once.
 */
// @ts-ignore: decorator
@inline function gemmTTiled(kind: i32, bs: i32, ts: i32, w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void {
  const cw = cols <= TILE_COLS ? cols : max<i32>(bs, (TILE_COLS / bs) * bs);
  for (let t0 = 0; t0 < n; t0 += TILE_ROWS) {
    const tn = min<i32>(TILE_ROWS, n - t0);
    const dyt = dy + ((<usize>t0 * dyStride) << 2), dxt = dx + ((<usize>t0 * dxStride) << 2);
    for (let c0 = 0; c0 < cols; c0 += cw) {
      const nc = min<i32>(cw, cols - c0);
      gemmT(kind, w + <usize>(c0 / bs) * ts, rowBytes, dyt, dyStride, dxt + (<usize>c0 << 2), dxStride, rows, nc, tn, scratch);
    }
  }
}

export function gemm_t_f32(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(0, 1, 4, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
export function gemm_t_f16(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(1, 1, 2, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
export function gemm_t_q4_0(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(2, 32, 18, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
export function gemm_t_q8_0(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(8, 32, 34, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
export function gemm_t_q4_k(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(12, 256, 144, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
export function gemm_t_q6_k(w: usize, rowBytes: usize, dy: usize, dyStride: i32, dx: usize, dxStride: i32, rows: i32, cols: i32, n: i32, scratch: usize): void { gemmTTiled(14, 256, 210, w, rowBytes, dy, dyStride, dx, dxStride, rows, cols, n, scratch); }
