// The training engine's f32 ops run in the wasm core (assembly/train-ops.ts): rows, elements or whole kv-head groups shared out over the pool.
import type { KernelCall, KernelHost } from "../../core/index.js";
import type { AttentionShape } from "./ops.js";

/** Work (in multiply-adds, roughly) below which an op stays on the calling thread: a round over polling threads costs microseconds, over sleeping ones a wake-up. */
const MIN_PARALLEL_WORK = { polling: 1 << 15, sleeping: 1 << 18 };

/** Whether `work` is worth a round of the host's pool (false without one). */
function worthSplitting(host: KernelHost, work: number): boolean {
  const p = host.parallel;
  return p !== undefined && p.threads > 1 && work >= MIN_PARALLEL_WORK[p.polls ? "polling" : "sleeping"];
}

/** Ranges per thread when the pool has a shared queue: a thread slowed by other work on its core takes fewer. */
const RANGES_PER_THREAD = 2;

/**
 * Splits [0, count) into contiguous ranges and runs make(i0, i1, range) for each: RANGES_PER_THREAD ranges a
 * thread through the pool's shared queue (or one a thread without one); all of it here below MIN_PARALLEL_WORK.
 * `range` numbers the ranges from 0 (per-range scratch: at most RANGES_PER_THREAD x threads of them).
 */
function spread(host: KernelHost, count: number, work: number, make: (i0: number, i1: number, range: number) => KernelCall): void {
  const p = host.parallel;
  const ranges = worthSplitting(host, work) ? Math.min(count, p!.runShared ? RANGES_PER_THREAD * p!.threads : p!.threads) : 1;
  if (ranges < 2) {
    const c = make(0, count, 0);
    host.fn(c.fn)(...c.args);
    return;
  }
  const per = Math.ceil(count / ranges);
  const calls: KernelCall[] = [];
  for (let k = 0, i0 = 0; i0 < count; k++, i0 += per) calls.push(make(i0, Math.min(count, i0 + per), k));
  if (p!.runShared) p!.runShared(calls);
  else p!.run(calls.map((c) => [c]));
}

/** Scratch blocks an op that takes one per range needs (attentionBackward's dpScratch). */
export function rangeScratchCount(host: KernelHost): number {
  const p = host.parallel;
  return p && p.threads > 1 ? (p.runShared ? RANGES_PER_THREAD : 1) * p.threads : 1;
}

/**
 * y (T rows of nOut, added to) += s u B^T for each adapted output of one input (u: T rows of rank, B: nOut x rank; outputs without a pair are skipped),
 * the second half of the LoRA products: token ranges of every output shared out over the pool in one round
 * when there is enough work (each y value gets the same operations either way).
 */
export function addLowRank(host: KernelHost, fn: string, outs: readonly LowRankOut[], T: number): void {
  const p = host.parallel;
  let work = 0;
  for (const o of outs) if (o.pair) work += T * o.pair.nOut * o.pair.rank;
  const ranges = p?.runShared && worthSplitting(host, work) ? Math.min(T, RANGES_PER_THREAD * p.threads) : 1;
  const per = Math.ceil(T / ranges);
  const calls = lowRankCalls;
  let used = 0;
  for (const o of outs) {
    const q = o.pair;
    if (!q || o.u === undefined) continue;
    for (let t0 = 0; t0 < T; t0 += per) {
      const c = (calls[used++] ??= { fn, args: new Array<number>(8).fill(0) });
      const a = c.args;
      c.fn = fn;
      a[0] = q.b.ptr; a[1] = o.u + 4 * t0 * q.rank; a[2] = o.y + 4 * t0 * q.nOut; a[3] = q.nOut; a[4] = q.rank; a[5] = Math.min(per, T - t0); a[6] = q.nOut; a[7] = q.scale;
    }
  }
  calls.length = used;
  if (ranges > 1) p!.runShared!(calls);
  else for (const c of calls) host.fn(c.fn)(...c.args);
}

/** An output of addLowRank: y, and when adapted its pair's B, rank and scale with u = A x (T rows of rank). */
export interface LowRankOut {
  readonly y: number;
  readonly u?: number;
  readonly pair?: { readonly b: { readonly ptr: number }; readonly nOut: number; readonly rank: number; readonly scale: number };
}

/** addLowRank's call objects, kept from one use to the next. */
const lowRankCalls: KernelCall[] = [];

/** dst (cols x rows) = s src^T for src (rows x cols), optionally scaling src in place too: column ranges over the pool. */
export function transposeScale(host: KernelHost, src: number, dst: number, rows: number, cols: number, s: number, inPlace: boolean): void {
  spread(host, cols, rows * cols, (c0, c1) => ({ fn: "train_transpose_scale", args: [src, dst, rows, cols, s, inPlace ? 1 : 0, c0, c1] }));
}

/** RoPE of T rows of nHeads heads by +angle (sign 1) or -angle (-1), tables of f64 cos and sin in the core (see ops.rope): row ranges over the pool. */
export function rope(host: KernelHost, x: number, T: number, nHeads: number, headDim: number, neox: boolean, table: { cos: number; sin: number; half: number }, sign: 1 | -1): void {
  spread(host, T, T * nHeads * table.half * 4, (t0, t1) => ({ fn: "train_rope", args: [x, nHeads, headDim, neox ? 1 : 0, table.cos, table.sin, table.half, sign, t0, t1] }));
}

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

/** dq, dk, dv += the gradients through attention; dpScratch holds s.T f32 per range (rangeScratchCount of them). */
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
