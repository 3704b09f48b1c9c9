// AdamW in f32 for the training engine: the reference's step (warm-up and cosine rate, clipping by global norm, decoupled weight decay) on f32 parameters and moments.
import { learningRate, type AdamWOptions, type StepReport } from "../reference/adamw.js";

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
    const o = this.options, st = this.state;
    if (params.length !== st.m.length || grads.length !== st.m.length) throw new RangeError(`${params.length} parameters and ${grads.length} gradients for ${st.m.length} moments`);
    const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.eps ?? 1e-8, wd = o.weightDecay ?? 0;
    const gradNorm = Math.sqrt(knownSumOfSquares ?? sumOfSquares(grads));
    const factor = o.maxGradNorm === undefined ? 1 : Math.min(1, o.maxGradNorm / (gradNorm + 1e-6));
    const lr = learningRate(o, st.steps);
    const t = ++st.steps;
    const stepSize = lr / (1 - Math.pow(b1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    for (let k = 0; k < params.length; k++) {
      const p = params[k], g = grads[k];
      if (g.length !== p.length || st.m[k].length !== p.length) throw new RangeError(`gradient ${k} has ${g.length} values for ${p.length} parameters`);
      update(p, g, st.m[k], st.v[k], factor, lr * wd, b1, b2, stepSize, bc2Sqrt, eps);
    }
    return { step: t - 1, lr, gradNorm };
  }
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

/** The AdamW update of one parameter array (f64 arithmetic, f32 storage). */
function update(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, factor: number, decay: number, b1: number, b2: number, stepSize: number, bc2Sqrt: number, eps: number): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * factor;
    const pi = p[i] * (1 - decay);
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] = pi - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}
