// f64 AdamW (decoupled weight decay) with a linear warm-up and cosine schedule and gradient clipping by global norm, step for step as PyTorch's.

export interface AdamWOptions {
  /** Peak learning rate, reached at the end of the warm-up. */
  readonly lr: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
  /** Steps of linear warm-up: step s < warmupSteps uses lr * (s + 1) / warmupSteps. */
  readonly warmupSteps?: number;
  /** Steps of the whole run: after the warm-up the rate follows a half cosine from lr down to minLr at this step. */
  readonly totalSteps: number;
  readonly minLr?: number;
  /** Clip the gradients to this global L2 norm (none when undefined). */
  readonly maxGradNorm?: number;
}

/** The learning rate of step `step` (0-based): linear warm-up, then cosine decay to minLr. */
export function learningRate(o: AdamWOptions, step: number): number {
  const warm = o.warmupSteps ?? 0, minLr = o.minLr ?? 0;
  if (step < warm) return (o.lr * (step + 1)) / warm;
  const progress = Math.min(1, (step - warm) / Math.max(1, o.totalSteps - warm));
  return minLr + (o.lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** The global L2 norm of a list of gradients. */
export function globalNorm(grads: readonly Float64Array[]): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  return Math.sqrt(ss);
}

/**
 * Scales the gradients in place so their global norm is at most maxNorm, as torch.nn.utils.clip_grad_norm_:
 * factor min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping.
 */
export function clipGradients(grads: readonly Float64Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= factor;
  return norm;
}

/** What one optimizer step did. */
export interface StepReport {
  /** 0-based index of the step taken. */
  readonly step: number;
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
}

/**
 * AdamW over a fixed list of parameter arrays, updated in place. One step: clip, then per parameter
 * p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = steps taken including this one.
 */
export class AdamW {
  /** First and second moments, one array per parameter (the optimizer state a checkpoint keeps). */
  readonly m: Float64Array[];
  readonly v: Float64Array[];
  /** Steps taken so far. */
  steps = 0;

  constructor(readonly params: readonly Float64Array[], readonly options: AdamWOptions) {
    if (!Number.isFinite(options.lr) || options.lr <= 0) throw new RangeError(`learning rate must be a finite positive number, got ${options.lr}`);
    if (!Number.isInteger(options.totalSteps) || options.totalSteps < 1) throw new RangeError(`total steps must be a positive integer, got ${options.totalSteps}`);
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  /** Applies one step with these gradients (clipped in place when maxGradNorm is set). */
  step(grads: readonly Float64Array[]): StepReport {
    const o = this.options;
    if (grads.length !== this.params.length) throw new RangeError(`${grads.length} gradients for ${this.params.length} parameters`);
    const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.eps ?? 1e-8, wd = o.weightDecay ?? 0;
    const gradNorm = o.maxGradNorm === undefined ? globalNorm(grads) : clipGradients(grads, o.maxGradNorm);
    const lr = learningRate(o, this.steps);
    const t = ++this.steps;
    const stepSize = lr / (1 - Math.pow(b1, t));
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
    this.params.forEach((p, k) => {
      const g = grads[k], m = this.m[k], v = this.v[k];
      if (g.length !== p.length) throw new RangeError(`gradient ${k} has ${g.length} values for ${p.length} parameters`);
      for (let i = 0; i < p.length; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
      }
    });
    return { step: t - 1, lr, gradNorm };
  }
}
