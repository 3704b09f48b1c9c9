// What a runtime has done so far for its stats: adapter loads, swaps (with latency) and token throughput without and with adapters.
import type { GenerationResult } from "./generation.js";
import { LatencyRecorder, type LatencySummary } from "./latency.js";

interface TokenTotals {
  tokens: number;
  ms: number;
}
interface SideTotals {
  prefill: TokenTotals;
  decode: TokenTotals;
  generated: number;
}

/** Prompt and per-token throughput of one side (without or with adapters attached). */
export interface ThroughputStats {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  generated: number;
}

export interface UsageStats {
  adapters: { name: string; loadMs: number }[];
  swaps: LatencySummary & { live: number; recreated: number };
  /** Prompt and per-token throughput, without and with adapters attached. */
  tokens: { base: ThroughputStats; adapted: ThroughputStats };
}

const rate = (t: TokenTotals) => (t.ms > 0 ? (t.tokens / t.ms) * 1000 : 0);
const sideTotals = (): SideTotals => ({ prefill: { tokens: 0, ms: 0 }, decode: { tokens: 0, ms: 0 }, generated: 0 });
const throughput = (t: SideTotals): ThroughputStats => ({ prefillTokensPerSecond: rate(t.prefill), decodeTokensPerSecond: rate(t.decode), generated: t.generated });

export class UsageRecorder {
  private readonly loads: { name: string; loadMs: number }[] = [];
  private readonly swapLatency = new LatencyRecorder();
  private readonly swapCounts = { live: 0, recreated: 0 };
  private readonly totals = { base: sideTotals(), adapted: sideTotals() };

  recordAdapterLoad(name: string, ms: number): void {
    this.loads.push({ name, loadMs: ms });
  }

  recordSwap(ms: number, live: boolean): void {
    this.swapLatency.add(ms);
    if (live) this.swapCounts.live++;
    else this.swapCounts.recreated++;
  }

  recordTokens(r: GenerationResult): void {
    const t = Object.keys(r.adapters).length > 0 ? this.totals.adapted : this.totals.base;
    t.prefill.tokens += r.timings.prefillTokens;
    t.prefill.ms += r.timings.prefillMs;
    t.decode.tokens += r.timings.decodeTokens;
    t.decode.ms += r.timings.decodeMs;
    t.generated += r.generatedTokens;
  }

  stats(): UsageStats {
    return {
      adapters: [...this.loads],
      swaps: { ...this.swapLatency.summary(), ...this.swapCounts },
      tokens: { base: throughput(this.totals.base), adapted: throughput(this.totals.adapted) },
    };
  }
}
