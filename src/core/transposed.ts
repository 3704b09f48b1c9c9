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

/**
 * Multiply-adds per byte of the pool's minParallelBytes below which a transposed product stays on the calling
 * thread. The work is counted in multiply-adds, not bytes of W: an f32 W (the adapter's factors, activations)
 * has eight times a Q4_0 one's bytes per multiply-add. With polling threads a round costs a few microseconds:
 * 1/4, i.e. 128K multiply-adds (about 15 us) at the default 512 KiB; with sleeping ones a wake-up of 50-100 us:
 * 2 (about Q4_0's multiply-adds per byte), so the small LoRA products stay on one thread.
 */
const MULTIPLY_ADDS_PER_PARALLEL_BYTE = { polling: 0.25, sleeping: 2 };

/** Call objects gemmTransposed fills in and hands to the pool, kept from one product to the next. */
const spareCalls: KernelCall[] = [];
/** The list of calls one product hands to the pool's shared queue, reused likewise. */
const sharedCalls: KernelCall[] = [];

/** True when the type has a transposed product (plain row layout only). */
export function hasTransposed(m: Matrix): boolean {
  return m.layout === undefined && TRANSPOSED_KERNELS.has(m.type.id);
}

/**
 * dx (n rows of w.cols f32, stride dxStride) += dy (n rows of w.rows f32, stride dyStride) W. With a pool, the
 * rows of dx go to the threads in contiguous ranges (each thread reads only its rows of dy and writes only its
 * rows of dx); with fewer rows than two a thread, column ranges (whole blocks, at least 64 columns each) do.
 * Each dx value gets the same operations in the same order either way, so the result is one thread's, bit for
 * bit. `scratch` holds one transposedScratchBytes(w.cols) block per thread.
 */
export function gemmTransposed(host: KernelHost, w: Matrix, dy: number, dyStride: number, dx: number, dxStride: number, n: number, scratch: readonly number[]): void {
  const fn = TRANSPOSED_KERNELS.get(w.type.id);
  if (!fn || w.layout !== undefined) throw new UnsupportedTypeError(w.type.id, `transposed product${w.layout ? ` in the ${w.layout} layout` : ""}`);
  const bs = w.type.blockSize, ts = w.type.typeSize;
  // the calls' objects are reused from product to product (they are consumed before this returns)
  let used = 0;
  const call = (t0: number, nt: number, c0: number, nc: number, t: number): KernelCall => {
    const c = (spareCalls[used++] ??= { fn: "", args: new Array<number>(10).fill(0) });
    const a = c.args;
    c.fn = fn;
    a[0] = w.ptr + (c0 / bs) * ts; a[1] = w.rowBytes; a[2] = dy + t0 * dyStride * 4; a[3] = dyStride; a[4] = dx + (t0 * dxStride + c0) * 4;
    a[5] = dxStride; a[6] = w.rows; a[7] = nc; a[8] = nt; a[9] = scratch[t];
    return c;
  };
  const p = host.parallel;
  const most = p ? Math.min(p.threads, scratch.length) : 1;
  if (!p || most < 2 || w.rows * w.cols * n < MULTIPLY_ADDS_PER_PARALLEL_BYTE[p.polls ? "polling" : "sleeping"] * p.minParallelBytes) {
    const c = call(0, n, 0, w.cols, 0);
    host.fn(c.fn)(...c.args);
    return;
  }
  if (p.runShared && scratch.length > most && n >= 2 * scratch.length) {
    // a shared queue: one range of rows per scratch block (even counts), so a thread slowed by other work takes fewer
    const per = Math.ceil(n / scratch.length / 2) * 2;
    const calls = sharedCalls;
    calls.length = 0;
    for (let t0 = 0; t0 < n; t0 += per) calls.push(call(t0, Math.min(per, n - t0), 0, w.cols, calls.length));
    p.runShared(calls);
    return;
  }
  const parts: KernelCall[][] = [];
  if (n >= 2 * most) {
    // rows of dx, in even counts (the kernel takes them two at a time)
    const per = Math.ceil(n / most / 2) * 2;
    for (let t = 0, t0 = 0; t < most && t0 < n; t++, t0 += per) parts.push([call(t0, Math.min(per, n - t0), 0, w.cols, t)]);
  } else {
    const unit = Math.max(bs, 64);
    const threads = Math.min(most, Math.floor(w.cols / unit));
    if (threads < 2) {
      const c = call(0, n, 0, w.cols, 0);
      host.fn(c.fn)(...c.args);
      return;
    }
    const per = Math.ceil(w.cols / threads / unit) * unit;
    for (let t = 0, c0 = 0; t < threads && c0 < w.cols; t++, c0 += per) parts.push([call(0, n, c0, Math.min(per, w.cols - c0), t)]);
  }
  p.run(parts);
}
