// Latency records: recent samples with count, median and 99th percentile, and cumulative histograms.

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

/** Nearest-rank percentile of sorted values, q in [0, 1]. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export class LatencyRecorder {
  private readonly samples: number[] = [];
  private next = 0;
  private total = 0;
  constructor(private readonly capacity = 4096) {}

  add(ms: number): void {
    this.total++;
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else {
      this.samples[this.next] = ms;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  summary(): LatencySummary {
    const s = [...this.samples].sort((a, b) => a - b);
    const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
    return { count: this.total, p50Ms: percentile(s, 0.5), p99Ms: percentile(s, 0.99), meanMs: mean };
  }
}

/** A cumulative histogram over fixed upper bounds (seconds), as Prometheus keeps them. */
export class Histogram {
  readonly counts: number[];
  count = 0;
  sum = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) this.counts[i]++;
  }
}
