// Test helper: the whole model's LoRA gradients against central finite differences of its loss, per tensor and per sampled entry.
import { loss, lossAndGradients, type ReferenceModel, type TrainSequence } from "../../src/train/reference/model.js";
import type { LoraAdapter } from "../../src/train/reference/lora.js";
import { centralDifferences, normwiseError, pick, randomArray, sampleIndices } from "./helpers.js";

export interface GradientCheck {
  /** Normwise error over the adapter's tensors of the directional derivative along one random direction per tensor. */
  directional: number;
  /** Normwise error over the sampled single entries of every tensor. */
  entries: number;
  /** Directional derivatives compared (one per tensor) and entries compared. */
  tensors: number;
  sampled: number;
  loss: number;
}

/**
 * For each A and B: d/ds loss(p + s d) at 0 along a seeded random unit direction d (the whole tensor's gradient,
 * projected), and `perTensor` single entries of the pairs `sampleEntries` picks (default: all), each by central
 * differences with step h, against the analytic gradient.
 */
export function checkModelGradients(
  m: ReferenceModel, lora: LoraAdapter, batch: readonly TrainSequence[], h: number, perTensor: number,
  sampleEntries: (key: string, index: number) => boolean = () => true,
): GradientCheck {
  const { loss: l0, grads } = lossAndGradients(m, lora, batch);
  const f = () => loss(m, lora, batch);
  const dirAnalytic: number[] = [], dirFd: number[] = [], entAnalytic: number[] = [], entFd: number[] = [];
  let seed = 100, index = 0;
  for (const [key, pair] of lora.pairs) {
    const entries = sampleEntries(key, index++);
    const g = grads.get(key)!;
    for (const half of ["a", "b"] as const) {
      const p = pair[half], gh = g[half];
      // a unit direction: the step moves the tensor by h in all, as a single entry's step does
      const d = randomArray(p.length, seed++);
      const dn = Math.hypot(...d);
      for (let i = 0; i < d.length; i++) d[i] /= dn;
      let an = 0;
      for (let i = 0; i < p.length; i++) an += gh[i] * d[i];
      const p0 = p.slice();
      const along = (s: number) => { for (let i = 0; i < p.length; i++) p[i] = p0[i] + s * d[i]; return f(); };
      const fd = (along(h) - along(-h)) / (2 * h);
      p.set(p0);
      dirAnalytic.push(an);
      dirFd.push(fd);
      if (!entries) continue;
      const idx = sampleIndices(p.length, perTensor, seed++);
      entAnalytic.push(...pick(gh, idx));
      entFd.push(...centralDifferences(f, p, idx, h));
    }
  }
  return {
    directional: normwiseError(dirAnalytic, dirFd),
    entries: normwiseError(entAnalytic, entFd),
    tensors: dirAnalytic.length,
    sampled: entAnalytic.length,
    loss: l0,
  };
}
