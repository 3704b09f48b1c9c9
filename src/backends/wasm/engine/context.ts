// One evaluation context of the engine: its own KV cache and token history over a shared model, adapters unmerged with live swap; several contexts evaluated in shared passes.
import type { EngineAdapter, ModelTerms } from "./adapters.js";
import type { KvCache } from "./kv-cache.js";
import { EngineModel, type SequenceRows } from "./model.js";
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

  /** Tokens this context has evaluated since it was created (each row of a forward pass counts once). */
  evaluatedTokens = 0;
  /** Tokens evaluated together when several are given (prompt evaluation); 1 runs them one at a time. */
  batchTokens = EngineModel.BATCH_TOKENS;
  /** Groups contexts with the same adapter set in shared passes (adapters' ids and scales). */
  private setKey = "";

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
    this.setKey = this.active.map((a) => `${a.adapter.id}:${a.scale}`).join(",");
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

  /** True once disposed. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Evaluates tokens after the cached ones; returns a copy of the last position's logits. */
  evaluate(tokens: readonly number[]): Float32Array {
    this.evalTokens(tokens);
    return this.model.logits();
  }

  /** Evaluates tokens (at least one); the logits of the last stay in the model's logits row 0. */
  private evalTokens(tokens: readonly number[]): void {
    this.checkFits(tokens);
    const chunk = Math.max(1, Math.min(this.batchTokens, EngineModel.BATCH_TOKENS));
    for (let i = 0; i < tokens.length; i += chunk) {
      const part = tokens.slice(i, i + chunk);
      this.model.forward([this.rows(part, i + chunk >= tokens.length)]);
      this.tokens.push(...part);
      this.evaluatedTokens += part.length;
    }
  }

  private checkFits(tokens: readonly number[]): void {
    this.check();
    if (tokens.length === 0) throw new Error("evaluate: no tokens");
    if (this.tokens.length + tokens.length > this.contextSize) {
      throw new RangeError(`context of ${this.contextSize} tokens cannot take ${tokens.length} more after ${this.tokens.length}`);
    }
  }

  /** This context's rows of a forward pass: `tokens` after its cached ones. */
  private rows(tokens: readonly number[], logits: boolean): SequenceRows {
    return { cache: this.cache, terms: this.terms, tokens, pos0: this.tokens.length, logits };
  }

  /**
   * Evaluates tokens for several contexts of one model in shared forward passes (each at most BATCH_TOKENS rows):
   * base products once for all of them, each context's adapters on its own rows, attention per context. Every
   * context ends as if it had evaluated its tokens alone, bit for bit. `onLogits(i, row)` is called once per item,
   * as soon as item i's last token is evaluated, with the model's logits row holding its next-token logits
   * (valid until the next pass). Contexts with the same adapter set share their adapters' products.
   */
  static evaluateTogether(items: readonly { context: EngineContext; tokens: readonly number[] }[], onLogits: (item: number, row: number) => void): void {
    if (items.length === 0) return;
    const model = items[0].context.model;
    const seen = new Set<EngineContext>();
    for (const { context, tokens } of items) {
      if (context.model !== model) throw new Error("evaluateTogether: contexts of different models");
      if (seen.has(context)) throw new Error("evaluateTogether: a context appears twice in one step");
      seen.add(context);
      context.checkFits(tokens);
    }
    // contexts with the same set side by side: their adapter terms run as one product over their rows
    const order = items.map((_, i) => i).sort((x, y) => (items[x].context.setKey < items[y].context.setKey ? -1 : items[x].context.setKey > items[y].context.setKey ? 1 : x - y));
    const done = items.map(() => 0);
    for (;;) {
      let budget = EngineModel.BATCH_TOKENS;
      const pass: { item: number; part: readonly number[]; last: boolean }[] = [];
      for (const i of order) {
        const { tokens, context } = items[i];
        const left = tokens.length - done[i];
        if (left === 0 || budget === 0) continue;
        const take = Math.min(left, budget, Math.max(1, Math.min(context.batchTokens, EngineModel.BATCH_TOKENS)));
        pass.push({ item: i, part: tokens.slice(done[i], done[i] + take), last: take === left });
        budget -= take;
      }
      if (pass.length === 0) return;
      const rows = model.forward(pass.map((p) => items[p.item].context.rows(p.part, p.last)));
      pass.forEach((p) => {
        items[p.item].context.tokens.push(...p.part);
        items[p.item].context.evaluatedTokens += p.part.length;
        done[p.item] += p.part.length;
      });
      pass.forEach((p, k) => {
        if (p.last) onLogits(p.item, rows[k]);
      });
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
