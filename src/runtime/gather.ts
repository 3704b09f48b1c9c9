// Prompts that arrive together share one evaluation: a step that would start a prompt waits briefly for the rest of a group that has been arriving together.

/**
 * Remembers, per group of requests that can share a step (one adapter set where sets take turns; every request
 * where the backend mixes sets), how many were in flight at once. When fewer are in flight than that and a
 * step is about to evaluate a new prompt, the others are likely on their way (clients that finished together
 * come back together): the step waits for them, at most `maxWaitMs`, so that their prompts are evaluated in one
 * pass instead of one step after another. A lone client never waits; a wait that ends without the group
 * complete lowers the group's size to what came, so the next one does not wait.
 */
export class ArrivalGather {
  private readonly peak = new Map<string, number>();
  private wake: (() => void) | null = null;
  /** Waits made and the milliseconds spent in them. */
  waits = 0;
  waitedMs = 0;

  /** A request of `group` arrived; `inFlight` counts the group's requests now running or queued, this one included. */
  arrived(group: string, inFlight: number): void {
    if (inFlight > (this.peak.get(group) ?? 0)) this.peak.set(group, inFlight);
    this.wake?.();
  }

  /** How many of the group are still expected: its recent size (capped at `room` more) minus those in flight. */
  expected(group: string, inFlight: number, room: number): number {
    return Math.max(0, Math.min((this.peak.get(group) ?? 0) - inFlight, room));
  }

  /**
   * Waits until `missing()` is 0 (arrivals call `arrived`) or `maxWaitMs` passed. When time runs out first,
   * the group's size becomes what is in flight now.
   */
  async wait(group: string, missing: () => number, inFlight: () => number, maxWaitMs: number): Promise<void> {
    if (!(maxWaitMs > 0) || missing() === 0) return;
    const t0 = performance.now();
    const deadline = t0 + maxWaitMs;
    this.waits++;
    while (missing() > 0) {
      const left = deadline - performance.now();
      if (left <= 0) {
        this.peak.set(group, inFlight());
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = null;
    }
    this.waitedMs += performance.now() - t0;
  }

  /** Forget every group (nothing is in flight any more for a long time, or the scheduler closes). */
  reset(): void {
    this.peak.clear();
  }
}
