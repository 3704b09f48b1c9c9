// One evaluation context of the engine: its own KV cache and token history over a shared model, adapters unmerged with live swap.
import type { EngineAdapter } from "./adapters.js";
import type { KvCache } from "./kv-cache.js";
import { EngineModel, type ModelTerms } from "./model.js";
import { Rng } from "../../../random.js";
import { SamplingParams, sampleToken } from "./sampling.js";

export interface ActiveEngineAdapter {
  adapter: EngineAdapter;
  scale: number;
}

export class EngineContext {
  private readonly cache: KvCache;
  private readonly tokens: number[] = [];
  private active: ActiveEngineAdapter[] = [];
  private terms!: ModelTerms;
  private disposed = false;

  /** Tokens evaluated together when several are given (prompt evaluation); 1 runs them one at a time. */
  batchTokens = EngineModel.BATCH_TOKENS;

  constructor(readonly model: EngineModel, readonly contextSize: number, adapters: readonly ActiveEngineAdapter[] = []) {
    this.cache = model.newKvCache(contextSize);
    this.setAdapters(adapters);
  }

  /** Tokens whose states are cached, in order. */
  get cachedTokens(): readonly number[] {
    return this.tokens;
  }

  /** Bytes of this context's KV cache. */
  get memoryBytes(): number {
    return this.cache.bytes;
  }

  get adapters(): readonly ActiveEngineAdapter[] {
    return this.active;
  }

  /**
   * Replaces the active adapter set (swap, rescale, mix or none) on the live context. Cached states keep what
   * they were computed with: clear the context to re-evaluate under the new set.
   */
  setAdapters(active: readonly ActiveEngineAdapter[]): void {
    for (const a of active) if (a.adapter.freed) throw new Error(`adapter ${a.adapter.name} was freed`);
    this.active = active.map((a) => ({ ...a }));
    this.terms = this.model.terms(this.active);
  }

  /** True while `adapter` is in this context's active set. */
  uses(adapter: EngineAdapter): boolean {
    return this.active.some((a) => a.adapter === adapter);
  }

  clear(): void {
    this.tokens.length = 0;
    this.cache.length = 0;
  }

  truncate(n: number): void {
    if (n < this.tokens.length) {
      this.tokens.length = Math.max(0, n);
      this.cache.length = this.tokens.length;
    }
  }

  private check(): void {
    if (this.disposed) throw new Error("context is disposed");
  }

  /** Evaluates tokens after the cached ones; returns a copy of the last position's logits. */
  evaluate(tokens: readonly number[]): Float32Array {
    this.evalTokens(tokens);
    return this.model.logits();
  }

  /** Evaluates tokens (at least one); the logits of the last stay in the model's buffer. */
  private evalTokens(tokens: readonly number[]): void {
    this.check();
    if (tokens.length === 0) throw new Error("evaluate: no tokens");
    if (this.tokens.length + tokens.length > this.contextSize) {
      throw new RangeError(`context of ${this.contextSize} tokens cannot take ${tokens.length} more after ${this.tokens.length}`);
    }
    const chunk = Math.max(1, Math.min(this.batchTokens, EngineModel.BATCH_TOKENS));
    for (let i = 0; i < tokens.length; i += chunk) {
      const pos = this.tokens.length;
      const part = tokens.slice(i, i + chunk);
      const last = i + chunk >= tokens.length;
      if (part.length === 1) this.model.forward(part[0], pos, this.cache, this.terms, last);
      else this.model.forwardBatch(part, pos, this.cache, this.terms, last);
      this.tokens.push(...part);
    }
  }

  /**
   * Evaluates `tokens` and then generates up to `maxTokens` tokens, each evaluated before the next is drawn
   * (the last one is not evaluated). Stops early when `stop(token)` says so.
   */
  *generate(tokens: readonly number[], sampling: SamplingParams, maxTokens = Infinity, stop?: (t: number) => boolean): Generator<number, void, void> {
    const rng = new Rng(sampling.seed);
    const greedy = !(sampling.temperature > 0);
    let next = tokens;
    for (let n = 0; n < maxTokens; n++) {
      this.evalTokens(next);
      const t = greedy ? this.model.argmax() : sampleToken(this.model.logits(), sampling, rng);
      yield t;
      if (stop?.(t)) return;
      next = [t];
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cache.dispose();
  }
}
