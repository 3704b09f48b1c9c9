// Next-token sampling for the engine: greedy, or top-k, then top-p, then temperature, drawn with a seeded generator.
import type { Rng } from "../../../random.js";

export interface SamplingParams {
  /** 0 (or less) = greedy. */
  temperature: number;
  /** 0 = no limit. */
  topK: number;
  /** 1 = no limit. */
  topP: number;
  seed: number;
}

/** Index of the largest value (the first on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Picks a token from logits; `rng` supplies the draw for non-greedy sampling. */
export function sampleToken(logits: ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  if (!(p.temperature > 0)) return argmax(logits);
  const n = logits.length;
  let idx = Array.from({ length: n }, (_, i) => i).sort((x, y) => logits[y] - logits[x] || x - y);
  if (p.topK > 0 && p.topK < n) idx = idx.slice(0, p.topK);
  // top-p on the distribution before temperature
  if (p.topP < 1) {
    const m = logits[idx[0]];
    const e = idx.map((i) => Math.exp(logits[i] - m));
    const z = e.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = idx.length;
    for (let j = 0; j < idx.length; j++) {
      cum += e[j] / z;
      if (cum >= p.topP) {
        keep = j + 1;
        break;
      }
    }
    idx = idx.slice(0, Math.max(1, keep));
  }
  const m = logits[idx[0]] / p.temperature;
  const w = idx.map((i) => Math.exp(logits[i] / p.temperature - m));
  const z = w.reduce((a, b) => a + b, 0);
  let r = rng.next() * z;
  for (let j = 0; j < idx.length; j++) {
    r -= w[j];
    if (r < 0) return idx[j];
  }
  return idx[idx.length - 1];
}
