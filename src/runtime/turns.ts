// Which adapter set decodes next when sets share one context: turns in rotation, a turn length chosen from the measured swap cost.

/** What the policy needs to know of a running sequence. */
export interface TurnCandidate {
  readonly key: string;
  /** False until the request's prompt was evaluated. */
  readonly started: boolean;
  /** Arrival order. */
  readonly id: number;
}

/**
 * Sets take turns in rotation; the set holding the turn decodes up to `turnTokens` steps while others wait.
 * A request whose prompt is not evaluated yet gets one step out of turn for its set (time to first token),
 * after which the rotation goes on where it was.
 */
export class TurnPolicy {
  /** Keys with running sequences; the first holds the turn. */
  private order: string[] = [];
  private holder: string | null = null;
  private used = 0;
  private plainStepMs = 0;
  private swapStepMs = 0;

  constructor(private readonly fixed?: number) {}

  /** Steps a set keeps its turn: fixed, or enough that a swap costs about 5% of the turn (1 to 16). */
  get turnTokens(): number {
    if (this.fixed !== undefined) return this.fixed;
    if (this.plainStepMs <= 0 || this.swapStepMs <= 0) return 4;
    return Math.min(16, Math.max(1, Math.ceil(this.swapExtraMs / (0.05 * this.plainStepMs))));
  }

  /** Recent mean time of a one-token step without a swap before it. */
  get stepMs(): number {
    return this.plainStepMs;
  }

  /** What a live swap adds to the step after it, recently. */
  get swapExtraMs(): number {
    return Math.max(0, this.swapStepMs - this.plainStepMs);
  }

  /** Records a one-token step (every sequence in it past its prompt) and whether a swap came before it. */
  observe(ms: number, swapped: boolean): void {
    if (swapped) this.swapStepMs = this.swapStepMs > 0 ? 0.8 * this.swapStepMs + 0.2 * ms : ms;
    else this.plainStepMs = this.plainStepMs > 0 ? 0.9 * this.plainStepMs + 0.1 * ms : ms;
  }

  /** Follows the running sequences: sets that finished leave the rotation, new ones join at its end. */
  track(running: readonly TurnCandidate[]): readonly string[] {
    this.order = this.order.filter((k) => running.some((r) => r.key === k));
    for (const r of running) if (!this.order.includes(r.key)) this.order.push(r.key);
    return this.order;
  }

  /** The key whose sequences advance this step. */
  pick(running: readonly TurnCandidate[]): string | null {
    if (this.track(running).length === 0) return null;
    let waiting: TurnCandidate | undefined;
    for (const r of running) if (!r.started && (!waiting || r.id < waiting.id)) waiting = r;
    if (waiting && waiting.key !== this.order[0]) return waiting.key;
    if (this.order[0] !== this.holder) {
      this.holder = this.order[0];
      this.used = 0;
    } else if (this.used >= this.turnTokens && this.order.length > 1) {
      this.order.push(this.order.shift()!);
      this.holder = this.order[0];
      this.used = 0;
    }
    this.used++;
    return this.holder;
  }
}
