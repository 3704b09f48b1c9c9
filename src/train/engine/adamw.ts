// AdamW in f32 for the training engine: the reference's step (warm-up and cosine rate, clipping by global norm, decoupled weight decay) on f32 parameters and moments.
import { learningRate, type AdamWOptions, type StepReport } from "../reference/adamw.js";
import type { Core, KernelCall } from "../../core/index.js";

export type { AdamWOptions, StepReport };

/** The optimizer's state: moments per parameter array and the steps taken (what a checkpoint keeps). */
export interface AdamWState {
  steps: number;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
}

export class AdamWF32 {
  readonly state: AdamWState;

  constructor(sizes: readonly number[], readonly options: AdamWOptions) {
    if (!Number.isFinite(options.lr) || options.lr <= 0) throw new RangeError(`learning rate must be a finite positive number, got ${options.lr}`);
    if (!Number.isInteger(options.totalSteps) || options.totalSteps < 1) throw new RangeError(`total steps must be a positive integer, got ${options.totalSteps}`);
    this.state = { steps: 0, m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
  }

  /**
   * One step on the parameters with these gradients (clipped in place when maxGradNorm is set). `sumOfSquares`
   * of the gradients may be passed when already known (sumOfSquares(grads)), so they are read once less.
   */
  step(params: readonly Float32Array[], grads: readonly Float32Array[], knownSumOfSquares?: number): StepReport {
    const st = this.state;
    if (params.length !== st.m.length || grads.length !== st.m.length) throw new RangeError(`${params.length} parameters and ${grads.length} gradients for ${st.m.length} moments`);
    params.forEach((p, k) => {
      if (grads[k].length !== p.length || st.m[k].length !== p.length) throw new RangeError(`gradient ${k} has ${grads[k].length} values for ${p.length} parameters`);
    });
    const { c, report } = this.begin(knownSumOfSquares ?? sumOfSquares(grads));
    for (let k = 0; k < params.length; k++) update(params[k], grads[k], st.m[k], st.v[k], c);
    return report;
  }

  /**
   * The same step with the parameters and gradients in the core (pointers, params[k] of st.m[k].length values):
   * each array's moments are copied into `scratch` (two blocks of the longest array's length) for the core's
   * train_adamw and back, so they stay in these arrays. Bit for bit `step`'s result.
   */
  stepInCore(core: Core, params: readonly number[], grads: readonly number[], scratch: { m: number; v: number }, sumOfSquares: number): StepReport {
    const st = this.state;
    if (params.length !== st.m.length || grads.length !== st.m.length) throw new RangeError(`${params.length} parameters and ${grads.length} gradients for ${st.m.length} moments`);
    const { c, report } = this.begin(sumOfSquares);
    const run = core.fn("train_adamw");
    for (let k = 0; k < params.length; k++) {
      const n = st.m[k].length;
      core.arena.f32(scratch.m, n).set(st.m[k]);
      core.arena.f32(scratch.v, n).set(st.v[k]);
      run(params[k], grads[k], scratch.m, scratch.v, n, c.factor, c.keep, c.b1, c.c1, c.b2, c.c2, c.stepSize, c.bc2Sqrt, c.eps);
      st.m[k].set(core.arena.f32(scratch.m, n));
      st.v[k].set(core.arena.f32(scratch.v, n));
    }
    return report;
  }

  /** Advances the step count and gives the step's constants and report. */
  private begin(sumOfSquares: number): { c: StepConstants; report: StepReport } {
    const o = this.options, st = this.state;
    const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.eps ?? 1e-8, wd = o.weightDecay ?? 0;
    const gradNorm = Math.sqrt(sumOfSquares);
    const factor = o.maxGradNorm === undefined ? 1 : Math.min(1, o.maxGradNorm / (gradNorm + 1e-6));
    const lr = learningRate(o, st.steps);
    const t = ++st.steps;
    const stepSize = lr / (1 - Math.pow(b1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    return { c: { factor, keep: 1 - lr * wd, b1, c1: 1 - b1, b2, c2: 1 - b2, stepSize, bc2Sqrt, eps }, report: { step: t - 1, lr, gradNorm } };
  }
}

/** One step's constants: gi = g factor; m = b1 m + c1 gi; v = b2 v + c2 gi gi; p = p keep - stepSize m / (sqrt(v) / bc2Sqrt + eps). */
interface StepConstants {
  readonly factor: number;
  readonly keep: number;
  readonly b1: number;
  readonly c1: number;
  readonly b2: number;
  readonly c2: number;
  readonly stepSize: number;
  readonly bc2Sqrt: number;
  readonly eps: number;
}

/** Sum of the squares of all gradient values (f64). A plain function: its loop keeps its sum unboxed. */
export function sumOfSquares(grads: readonly Float32Array[]): number {
  let ss = 0;
  for (let k = 0; k < grads.length; k++) {
    const g = grads[k];
    for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  }
  return ss;
}

/** Values per call of the core's sum of squares: arrays are cut into pieces this long, so the pool's threads share even a few large arrays evenly. */
export const SUM_PIECE = 16384;

/**
 * The gradients' sum of squares in the core (train_sum_squares), shared out over the pool when the core has
 * one: arrays cut into pieces of SUM_PIECE values, each summed in lanes (sumOfSquaresInLanes), the pieces'
 * sums added here in order, so the result does not depend on the thread count.
 */
export class CoreSumOfSquares {
  /** One f64 partial sum per piece. */
  private readonly partials: number;
  private readonly pieces: number;
  /** One call per piece, filled in again each time (no garbage per step). */
  private readonly calls: KernelCall[] = [];
  private disposed = false;

  constructor(private readonly core: Core, readonly sizes: readonly number[]) {
    this.pieces = sizes.reduce((s, n) => s + Math.ceil(n / SUM_PIECE), 0);
    this.partials = core.arena.alloc(8 * Math.max(1, this.pieces));
  }

  /** Sum of the squares of the values of arrays[k] (pointers to sizes[k] f32 each). */
  of(arrays: readonly number[]): number {
    if (arrays.length !== this.sizes.length) throw new RangeError(`${arrays.length} arrays for ${this.sizes.length} sizes`);
    const calls = this.calls;
    let i = 0;
    for (let k = 0; k < this.sizes.length; k++) {
      for (let off = 0; off < this.sizes[k]; off += SUM_PIECE, i++) {
        const c = (calls[i] ??= { fn: "train_sum_squares", args: [0, 0, 0] });
        c.args[0] = arrays[k] + 4 * off;
        c.args[1] = Math.min(SUM_PIECE, this.sizes[k] - off);
        c.args[2] = this.partials + 8 * i;
      }
    }
    const p = this.core.parallel;
    if (p?.runShared && p.threads > 1 && calls.length > 1) p.runShared(calls);
    else for (const c of calls) this.core.fn(c.fn)(...c.args);
    const parts = new Float64Array(this.core.arena.memory.buffer, this.partials, this.pieces);
    let ss = 0;
    for (let j = 0; j < parts.length; j++) ss += parts[j];
    return ss;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.core.arena.release(this.partials);
  }
}

/** The scalar reference of the core's train_sum_squares: four running f64 sums by position mod 4, added as (s0 + s1) + (s2 + s3), then the last length % 4 values in order. */
export function sumOfSquaresInLanes(x: Float32Array): number {
  const lanes = [0, 0, 0, 0];
  const n4 = x.length & ~3;
  for (let i = 0; i < n4; i++) lanes[i & 3] += x[i] * x[i];
  let s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (let i = n4; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** The AdamW update of one parameter array (f64 arithmetic, f32 storage): the reference of the core's train_adamw. */
function update(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, c: StepConstants): void {
  const { factor, keep, b1, c1, b2, c2, stepSize, bc2Sqrt, eps } = c;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * factor;
    const pi = p[i] * keep;
    m[i] = b1 * m[i] + c1 * gi;
    v[i] = b2 * v[i] + c2 * gi * gi;
    p[i] = pi - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}
