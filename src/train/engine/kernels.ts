// The training engine's f32 ops run in the wasm core (assembly/train-ops.ts): rows, elements or whole kv-head groups shared out over the pool.
import type { KernelCall, KernelHost } from "../../core/index.js";
import type { AttentionShape } from "./ops.js";

/** Work (in multiply-adds, roughly) below which an op stays on the calling thread. */
const MIN_PARALLEL_WORK = 1 << 15;

/** Splits [0, count) into contiguous ranges, one per thread, and runs make(i0, i1, thread) for each. */
function spread(host: KernelHost, count: number, work: number, make: (i0: number, i1: number, thread: number) => KernelCall): void {
  const p = host.parallel;
  const threads = p && work >= MIN_PARALLEL_WORK ? Math.min(p.threads, count) : 1;
  if (threads < 2) {
    const c = make(0, count, 0);
    host.fn(c.fn)(...c.args);
    return;
  }
  const per = Math.ceil(count / threads);
  const parts: KernelCall[][] = [];
  for (let t = 0, i0 = 0; i0 < count; t++, i0 += per) parts.push([make(i0, Math.min(count, i0 + per), t)]);
  p!.run(parts);
}

/**
 * y (T rows of nOut, added to) += s u B^T for each adapted output of one input (u: T rows of rank, B: nOut x rank),
 * the second half of the LoRA products: token ranges of every output shared out over the pool in one round
 * when there is enough work (each y value gets the same operations either way).
 */
export function addLowRank(host: KernelHost, fn: string, outs: readonly { b: number; u: number; y: number; nOut: number; rank: number; scale: number }[], T: number): void {
  const p = host.parallel;
  const work = outs.reduce((s, o) => s + T * o.nOut * o.rank, 0);
  const ranges = p?.runShared && work >= MIN_PARALLEL_WORK ? Math.min(T, 2 * p.threads) : 1;
  const per = Math.ceil(T / ranges);
  const calls = lowRankCalls;
  let used = 0;
  for (const o of outs) {
    for (let t0 = 0; t0 < T; t0 += per) {
      const c = (calls[used++] ??= { fn, args: new Array<number>(8).fill(0) });
      const a = c.args;
      c.fn = fn;
      a[0] = o.b; a[1] = o.u + 4 * t0 * o.rank; a[2] = o.y + 4 * t0 * o.nOut; a[3] = o.nOut; a[4] = o.rank; a[5] = Math.min(per, T - t0); a[6] = o.nOut; a[7] = o.scale;
    }
  }
  calls.length = used;
  if (ranges > 1) p!.runShared!(calls);
  else for (const c of calls) host.fn(c.fn)(...c.args);
}

/** addLowRank's call objects, kept from one use to the next. */
const lowRankCalls: KernelCall[] = [];

/** RMSNorm of T rows of n values (see ops.rmsnorm). */
export function rmsnorm(host: KernelHost, y: number, inv: number, x: number, w: number, T: number, n: number, eps: number): void {
  spread(host, T, T * n, (t0, t1) => ({ fn: "train_rmsnorm", args: [y, inv, x, w, n, eps, t0, t1] }));
}

/** dx += the gradient through the norm (see ops.rmsnormBackward). */
export function rmsnormBackward(host: KernelHost, dx: number, dy: number, x: number, w: number, inv: number, T: number, n: number): void {
  spread(host, T, T * n, (t0, t1) => ({ fn: "train_rmsnorm_back", args: [dx, dy, x, w, inv, n, t0, t1] }));
}

/** h = silu(g) u over n values. */
export function swiglu(host: KernelHost, h: number, g: number, u: number, n: number): void {
  spread(host, n, 8 * n, (i0, i1) => ({ fn: "train_swiglu", args: [h, g, u, i0, i1] }));
}

/** dg = dh u silu'(g), du = dh silu(g) over n values (written). */
export function swigluBackward(host: KernelHost, dg: number, du: number, dh: number, g: number, u: number, n: number): void {
  spread(host, n, 8 * n, (i0, i1) => ({ fn: "train_swiglu_back", args: [dg, du, dh, g, u, i0, i1] }));
}

/** Causal GQA attention, kv-head groups over the pool; writes probs (nHead x T x T). */
export function attention(host: KernelHost, out: number, probs: number, q: number, k: number, v: number, s: AttentionShape): void {
  const group = s.nHead / s.nHeadKv;
  spread(host, s.nHeadKv, s.nHead * s.T * s.T * s.headDim, (g0, g1) => ({
    fn: "train_attention", args: [out, probs, q, k, v, s.T, s.nHead, s.nHeadKv, s.headDim, g0 * group, g1 * group],
  }));
}

/** dq, dk, dv += the gradients through attention; dpScratch holds s.T f32 per thread. */
export function attentionBackward(
  host: KernelHost, dq: number, dk: number, dv: number, dout: number, q: number, k: number, v: number, probs: number, s: AttentionShape, dpScratch: readonly number[],
): void {
  const group = s.nHead / s.nHeadKv;
  spread(host, s.nHeadKv, 2 * s.nHead * s.T * s.T * s.headDim, (g0, g1, t) => ({
    fn: "train_attention_back", args: [dq, dk, dv, dout, q, k, v, probs, s.T, s.nHead, s.nHeadKv, s.headDim, g0 * group, g1 * group, dpScratch[t]],
  }));
}

/**
 * Cross-entropy of T rows of n logits (targets: i32 per row, weights: f32 per row, 0 skips); row losses (f64) go to
 * `losses`. With dlogits (it may be logits itself) each row gets weight (softmax - onehot).
 */
export function crossEntropy(host: KernelHost, logits: number, dlogits: number, n: number, targets: number, weights: number, losses: number, T: number): void {
  spread(host, T, T * n * 4, (t0, t1) => ({ fn: "train_cross_entropy", args: [logits, dlogits, n, targets, weights, losses, t0, t1] }));
}
