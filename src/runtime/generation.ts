// A running generation: an async iterator of text pieces plus a promise of the final result.
import type { AdapterPath } from "./kv-plan.js";

export type FinishReason = "length" | "stop" | "eos" | "abort" | "context";

export interface GenerationTimings {
  /** Prompt tokens evaluated (after any cached prefix was reused). */
  prefillTokens: number;
  prefillMs: number;
  /** Tokens evaluated one at a time after the first sampled token. */
  decodeTokens: number;
  decodeMs: number;
  totalMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Time spent waiting for a free sequence slot (scheduler only). */
  queueMs?: number;
}

export interface GenerationResult {
  text: string;
  /** Generated token ids (stop text and end-of-generation tokens excluded). */
  tokens: number[];
  promptTokens: number;
  /** Prompt tokens whose KV states were reused from the session's cache. */
  reusedPromptTokens: number;
  generatedTokens: number;
  finishReason: FinishReason;
  /** The adapter set at the end of the generation. */
  adapters: Record<string, number>;
  /** Adapter changes applied while this generation ran (each re-evaluates prompt and text so far). */
  adapterChanges: number;
  /**
   * How the set evaluated the tokens: "base" (no adapters), "plain" (every token, as any set with a plain
   * LoRA adapter), "alora" (the base before the invocation start, the set from it on) or "alora-inactive"
   * (aLoRA adapters whose invocation is not in the prompt: the base throughout).
   */
  adapterPath: AdapterPath;
  /** Where the aLoRA adapters started acting: an index in the prompt's tokens (path "alora"). */
  invocationStart?: number;
  timings: GenerationTimings;
}

/** Streams pieces to one consumer; `result` settles when the generation ends, whether or not it is iterated. */
export class Generation implements AsyncIterable<string> {
  readonly result: Promise<GenerationResult>;
  private readonly cancel = new AbortController();
  private readonly pieces: string[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: unknown = undefined;
  private resolveResult!: (r: GenerationResult) => void;
  private rejectResult!: (e: unknown) => void;

  constructor() {
    this.result = new Promise<GenerationResult>((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    this.result.catch(() => undefined); // a consumer that only iterates still sees the error there
  }

  /**
   * Stop the generation: the token being computed is the last (the result ends with finishReason "abort").
   * Breaking out of a `for await` loop over the generation does this too.
   */
  abort(): void {
    if (!this.ended) this.cancel.abort();
  }

  /** True once `abort()` was called (or the consumer stopped iterating) before the end. */
  get aborted(): boolean {
    return this.cancel.signal.aborted;
  }

  /** @internal aborted by the consumer; producers stop at the next token. */
  get abortSignal(): AbortSignal {
    return this.cancel.signal;
  }

  /** True once the result is settled. */
  get done(): boolean {
    return this.ended;
  }

  /** @internal */
  push(piece: string): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.notify();
  }

  /** @internal */
  finish(r: GenerationResult): void {
    this.ended = true;
    this.resolveResult(r);
    this.notify();
  }

  /** @internal */
  fail(e: unknown): void {
    this.ended = true;
    this.failure = e ?? new Error("generation failed");
    this.rejectResult(this.failure);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The whole text (waits for the end). */
  async text(): Promise<string> {
    return (await this.result).text;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    try {
      for (;;) {
        if (this.pieces.length > 0) {
          yield this.pieces.shift()!;
          continue;
        }
        if (this.ended) {
          if (this.failure !== undefined) throw this.failure;
          return;
        }
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      // a consumer that stops iterating (break, return, throw) stops the generation
      if (!this.ended) this.abort();
    }
  }
}

/** What the token bookkeeping needs from a backend. */
export interface TextSource {
  detokenize(tokens: readonly number[], before?: readonly number[]): string;
  isEndOfGeneration(token: number): boolean;
}

/**
 * Turns sampled tokens into streamed text for one generation: end-of-generation tokens, stop strings and
 * incomplete characters are handled here, so every producer (sessions, the scheduler) streams alike.
 */
export class TokenText {
  readonly tokens: number[] = [];
  private readonly matcher: StopMatcher;
  text = "";

  constructor(
    private readonly source: TextSource,
    private readonly promptTokens: readonly number[],
    stops: readonly string[],
    private readonly out: Generation,
    private readonly ignoreEos = false,
  ) {
    this.matcher = new StopMatcher(stops);
  }

  /** Adds one sampled token; returns why the generation ends here, or null to go on. */
  add(token: number): "eos" | "stop" | null {
    if (!this.ignoreEos && this.source.isEndOfGeneration(token)) return "eos";
    this.tokens.push(token);
    const u = this.matcher.update(this.source.detokenize(this.tokens, this.promptTokens));
    this.out.push(u.piece);
    this.text = u.text;
    return u.stopped ? "stop" : null;
  }

  /** Emits what was held back (unless a stop string ended it) and returns the final text. */
  finish(reason: FinishReason): string {
    if (reason !== "stop") {
      const full = this.source.detokenize(this.tokens, this.promptTokens);
      this.out.push(this.matcher.flush(full));
      this.text = full;
    }
    return this.text;
  }
}

/** Stop strings as a list. */
export function stopList(stop: string | readonly string[] | undefined): string[] {
  return stop === undefined ? [] : typeof stop === "string" ? [stop] : [...stop];
}

/** Tracks generated text against stop strings and decides what can be emitted safely. */
export class StopMatcher {
  private emitted = 0;
  constructor(private readonly stops: readonly string[]) {}

  /**
   * Given the full text so far, returns the next piece to emit and whether a stop string was hit
   * (then `text` is the final text, cut before the stop string).
   */
  update(full: string): { piece: string; stopped: boolean; text: string } {
    let cut = -1;
    for (const s of this.stops) {
      if (s.length === 0) continue;
      const i = full.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const piece = full.slice(this.emitted, Math.max(this.emitted, cut));
      this.emitted = Math.max(this.emitted, cut);
      return { piece, stopped: true, text: full.slice(0, cut) };
    }
    // Hold back an incomplete UTF-8 character and any tail that could start a stop string.
    const end = full.endsWith("\uFFFD") ? full.length - 1 : full.length;
    let safe = end;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, end); k > 0; k--) {
        if (full.slice(end - k, end) === s.slice(0, k)) {
          safe = Math.min(safe, end - k);
          break;
        }
      }
    }
    if (safe <= this.emitted) return { piece: "", stopped: false, text: full };
    const piece = full.slice(this.emitted, safe);
    this.emitted = safe;
    return { piece, stopped: false, text: full };
  }

  /** Whatever is still held back, at the end. */
  flush(full: string): string {
    const piece = full.slice(this.emitted);
    this.emitted = full.length;
    return piece;
  }
}
