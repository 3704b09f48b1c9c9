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
  /** Recent plain step times, all sets, and per set and number of sequences (the same batch). */
  private readonly plain: number[] = [];
  private readonly plainByKey = new Map<string, number[]>();
  /** Recent extras of a step right after a swap over the same set's plain steps. */
  private readonly extras: number[] = [];

  constructor(private readonly fixed?: number) {}

  /**
   * Steps a set keeps its turn: fixed, or enough that a swap costs about 2.5% of the turn (2 to 16).
   * Measured on the generated 97M Q4_0 model at 1 thread (bench:serve's swap step): a live swap adds 1.4 to
   * 2.4 ms to the next step of the same sequences (llama.cpp rebuilds its scheduler and reserves its graphs
   * after any change of adapters; zero-scale adapters are dropped from the graph, so keeping every set attached
   * is no way around it), against 6 to 8 ms for a one-sequence step: about 12 steps. A set that waits then
   * waits at most 16 steps per other set.
   */
  get turnTokens(): number {
    if (this.fixed !== undefined) return this.fixed;
    if (this.plain.length === 0 || this.extras.length === 0) return 4;
    // at least two: a turn then holds a plain step of its set besides the one after the swap, so the comparison
    // stays current (with one-step turns every step follows a swap, nothing plain is measured again, and a
    // swap cost once estimated at zero would stay there)
    return Math.min(16, Math.max(2, Math.ceil(this.swapExtraMs / (0.025 * this.stepMs))));
  }

  /** Median of recent one-token steps without a swap before them. */
  get stepMs(): number {
    return median(this.plain);
  }

  /** What a live swap adds to the step after it: the median of recent steps after a swap over their set's plain steps. */
  get swapExtraMs(): number {
    return Math.max(0, median(this.extras));
  }

  /**
   * Records a one-token step (every sequence in it past its prompt) of the set `key` with `rows` sequences,
   * and whether a swap came before it. A step after a swap is compared with that set's recent plain steps of
   * as many sequences (the same batch), not with other sets' steps or other batch sizes, whose times differ.
   */
  observe(ms: number, swapped: boolean, key = "", rows = 1): void {
    const batch = `${rows}:${key}`;
    if (swapped) {
      const own = this.plainByKey.get(batch);
      if (own && own.length > 0) push(this.extras, ms - median(own), 31);
      return;
    }
    push(this.plain, ms, 63);
    let own = this.plainByKey.get(batch);
    if (!own) this.plainByKey.set(batch, (own = []));
    push(own, ms, 15);
  }

  /** Follows the running sequences: sets that finished leave the rotation, new ones join at its end. */
  track(running: readonly TurnCandidate[]): readonly string[] {
    this.order = this.order.filter((k) => running.some((r) => r.key === k));
    for (const r of running) if (!this.order.includes(r.key)) this.order.push(r.key);
    return this.order;
  }

  /** The key whose sequences advance this step. */
  pick(running: readonly TurnCandidate[]): string | null {
    if (this.track(running).length === 0) {
      this.plainByKey.clear();
      return null;
    }
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

function push(xs: number[], x: number, keep: number): void {
  xs.push(x);
  if (xs.length > keep) xs.shift();
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
