// Transposed products of resident weights for the backward pass, dX += dY W, read from the weights' own blocks (assembly/transposed.ts); columns split over the pool.
import { KERNELS, UnsupportedTypeError } from "./kernels.js";
import type { KernelCall, KernelHost, Matrix } from "./types.js";

/** The transposed-product kernel of each weight type that has one, as the type table gives it. */
export const TRANSPOSED_KERNELS: ReadonlyMap<number, string> = new Map(
  [...KERNELS].flatMap(([id, k]) => (k.transposed ? [[id, k.transposed] as const] : [])),
);

/** Scratch bytes one thread's transposed product needs for matrices of up to `cols` columns (four decoded rows). */
export function transposedScratchBytes(cols: number): number {
  return 4 * cols * 4;
}

/** True when the type has a transposed product (plain row layout only). */
export function hasTransposed(m: Matrix): boolean {
  return m.layout === undefined && TRANSPOSED_KERNELS.has(m.type.id);
}

/**
 * dx (n rows of w.cols f32, stride dxStride) += dy (n rows of w.rows f32, stride dyStride) W. With a pool, column
 * ranges (whole blocks, at least 64 columns each) go to the threads; each thread's values are the same bits as one
 * thread's. `scratch` holds one transposedScratchBytes(w.cols) block per thread.
 */
export function gemmTransposed(host: KernelHost, w: Matrix, dy: number, dyStride: number, dx: number, dxStride: number, n: number, scratch: readonly number[]): void {
  const fn = TRANSPOSED_KERNELS.get(w.type.id);
  if (!fn || w.layout !== undefined) throw new UnsupportedTypeError(w.type.id, `transposed product${w.layout ? ` in the ${w.layout} layout` : ""}`);
  const bs = w.type.blockSize, ts = w.type.typeSize;
  const call = (c0: number, nc: number, t: number): KernelCall => ({
    fn, args: [w.ptr + (c0 / bs) * ts, w.rowBytes, dy, dyStride, dx + c0 * 4, dxStride, w.rows, nc, n, scratch[t]],
  });
  const p = host.parallel;
  const unit = Math.max(bs, 64);
  const threads = p ? Math.min(p.threads, scratch.length, Math.floor(w.cols / unit)) : 1;
  if (!p || threads < 2 || w.rows * w.rowBytes * n < p.minParallelBytes) {
    const c = call(0, w.cols, 0);
    host.fn(c.fn)(...c.args);
    return;
  }
  const per = Math.ceil(w.cols / threads / unit) * unit;
  const parts: KernelCall[][] = [];
  for (let t = 0, c0 = 0; t < threads && c0 < w.cols; t++, c0 += per) parts.push([call(c0, Math.min(per, w.cols - c0), t)]);
  p.run(parts);
}
