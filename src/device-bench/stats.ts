// Summary statistics of repeated measurements: the {min, median, max, runs} figure of the bench schema.

export interface Figure {
  min: number;
  median: number;
  max: number;
  runs: number;
  unit: string;
}

/** A figure from samples (at least one, all finite). */
export function figure(samples: readonly number[], unit: string): Figure {
  if (samples.length === 0) throw new RangeError("a figure needs at least one sample");
  for (const s of samples) if (!Number.isFinite(s)) throw new RangeError(`non-finite sample ${s}`);
  const v = [...samples].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  const r = (x: number) => Number(x.toPrecision(6));
  return { min: r(v[0]), median: r(median), max: r(v[v.length - 1]), runs: v.length, unit };
}

/** Milliseconds an async function takes. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
