// A session: one backend context (own KV cache) over the shared base, with a live-swappable adapter set (plain LoRA or aLoRA).
import type { ActiveAdapter, Backend, BackendContext } from "../backends/backend.js";
import { DisposedError, InvalidArgumentError } from "../errors.js";
import { adapterSetKey, adapterSetObject, normalizeAdapterSet, type AdapterSet, type AdapterSetInput } from "./adapter-set.js";
import { Generation, TokenText, stopList, type FinishReason, type GenerationResult } from "./generation.js";
import { BASE_KV, isAloraOnly, keptPrefixLimit, planEvaluation, sharedInvocation, type EvalPlan, type KvOrigin, type PlannedAdapter } from "./kv-plan.js";

export interface GenerateOptions {
  /** Most tokens to generate (default 64). */
  maxTokens?: number;
  /** 0 (default) is greedy decoding. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Sampling seed (default 0): the same seed, prompt and adapter set give the same text. */
  seed?: number;
  /** Stop before any of these strings. */
  stop?: string | readonly string[];
  signal?: AbortSignal;
  /** Reuse the KV states of a cached prompt prefix (default true). */
  reuseCache?: boolean;
  /** Add the BOS token before the prompt (default true). */
  addBos?: boolean;
}

export interface SessionOptions {
  adapters?: AdapterSetInput;
  /** Context size in tokens (default: the runtime's). */
  contextSize?: number;
}

/** What a session needs from its runtime. */
export interface SessionHost {
  readonly backend: Backend;
  readonly contextSize: number;
  /** False forces re-creating the context on every adapter change. */
  readonly liveSwap: boolean;
  /** Backend adapter for a loaded name; throws AdapterNameError when it is not loaded. */
  resolveAdapter(name: string): ActiveAdapter["adapter"];
  defaultScale(name: string): number;
  /** The invocation sequence of a loaded aLoRA adapter; undefined for a plain one. */
  invocation(name: string): readonly number[] | undefined;
  recordSwap(ms: number, live: boolean): void;
  recordTokens(r: GenerationResult): void;
  sessionClosed(s: Session): void;
}

export class Session {
  private ctx: BackendContext | null = null;
  private desired: AdapterSet;
  private desiredAdapters: PlannedAdapter[] = [];
  private desiredVersion = 0;
  private applied: AdapterSet = [];
  private appliedAdapters: PlannedAdapter[] = [];
  /** What computed the cached KV states (see KvOrigin), and the set attached to the context now. */
  private kv: KvOrigin = BASE_KV;
  private attachedKey = "";
  private appliedVersion = -1;
  private waiters: { version: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private busy = 0;
  private disposed = false;
  readonly contextSize: number;
  /**
   * Adapter changes applied to the live context, and by re-creating it; `kept` counts the live ones that kept
   * the cache (between the base and aLoRA sets: the base part of the cache stays valid).
   */
  readonly swaps = { live: 0, recreated: 0, kept: 0 };

  constructor(
    private readonly host: SessionHost,
    options: SessionOptions = {},
  ) {
    this.contextSize = options.contextSize ?? host.contextSize;
    [this.desired, this.desiredAdapters] = this.validate(options.adapters ?? {});
  }

  /** The adapter set in effect for the next token (as last set). */
  get adapters(): Record<string, number> {
    return adapterSetObject(this.desired);
  }

  /** A stable key of the current set. */
  get adapterKey(): string {
    return adapterSetKey(this.desired);
  }

  /** Generations running or queued on this session. */
  get pendingGenerations(): number {
    return this.busy;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Memory of the session's context in bytes (0 before it is created). */
  get memoryBytes(): number {
    return this.ctx?.memoryBytes ?? 0;
  }

  /** Tokens whose KV states the session holds. */
  get cachedTokens(): readonly number[] {
    return this.ctx?.cachedTokens ?? [];
  }

  /** Tokens the session's context has evaluated since it was created, as the backend counts them. */
  get evaluatedTokens(): number {
    return this.ctx?.evaluatedTokens ?? 0;
  }

  /**
   * A normalised set and its adapters' invocations. aLoRA adapters need a live context (they switch adapters
   * mid-prompt with the cache kept) and, several in one set, one shared invocation.
   */
  private validate(input: AdapterSetInput): [AdapterSet, PlannedAdapter[]] {
    const set = normalizeAdapterSet(input, (n) => this.host.defaultScale(n));
    for (const [name] of set) this.host.resolveAdapter(name);
    const planned = set.map(([name]) => ({ name, invocation: this.host.invocation(name) }));
    const alora = planned.filter((a) => a.invocation);
    if (alora.length > 0 && !this.host.liveSwap) {
      throw new InvalidArgumentError(`aLoRA adapter "${alora[0].name}" needs live adapter swaps (it switches from the base to the adapter ` +
        "at its invocation with the cache kept), and this runtime re-creates contexts on adapter changes");
    }
    if (isAloraOnly(planned)) sharedInvocation(planned);
    return [set, planned];
  }

  private ensureOpen(): void {
    if (this.disposed) throw new DisposedError("session");
  }

  /** Runs `fn` after every earlier call on this session. */
  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Replace the adapter set (swap, rescale or mix). Takes effect before the next token is computed:
   * at once when idle, after the current token when a generation is running (which then re-evaluates
   * its prompt and text so far under the new set). KV states computed under the old set are never reused.
   * Resolves once the change is applied.
   */
  setAdapters(adapters: AdapterSetInput): Promise<void> {
    this.ensureOpen();
    [this.desired, this.desiredAdapters] = this.validate(adapters);
    return this.requestApply();
  }

  /** Drop one adapter from the set (used when it is unloaded); resolves once applied. */
  removeAdapter(name: string): Promise<void> {
    if (this.disposed) return Promise.resolve();
    if (!this.desired.some(([n]) => n === name) && !this.applied.some(([n]) => n === name)) return Promise.resolve();
    this.desired = this.desired.filter(([n]) => n !== name);
    this.desiredAdapters = this.desiredAdapters.filter((a) => a.name !== name);
    return this.requestApply();
  }

  /** Whether `name` is in the set or still attached to the context. */
  uses(name: string): boolean {
    return this.desired.some(([n]) => n === name) || this.applied.some(([n]) => n === name);
  }

  private requestApply(): Promise<void> {
    const version = ++this.desiredVersion;
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ version, resolve, reject }));
    // Applied at once when idle; a running generation applies it after its current token (this queued
    // call then finds nothing left to do).
    void this.serialize(() => this.applyDesired(false)).catch(() => undefined);
    return p;
  }

  /**
   * Make the context's adapters equal the desired set. The KV cache is cleared when the set changed, except
   * between the base and aLoRA sets on a live context: states computed by the base stay, and the next
   * evaluation keeps those before its invocation start (see keptPrefixLimit).
   * Without a context yet, `create` false just records the set (the context is made with it later).
   */
  private async applyDesired(create = true): Promise<void> {
    if (this.disposed) return;
    const version = this.desiredVersion;
    const target = this.desired;
    const targetAdapters = this.desiredAdapters;
    try {
      if (!this.ctx && !create) {
        // nothing attached yet: the set is used when the context is created
      } else if (!this.ctx) {
        this.ctx = await this.host.backend.createContext({ contextSize: this.contextSize, adapters: this.active(target), live: this.host.liveSwap });
        this.attachedKey = adapterSetKey(target);
        this.kv = BASE_KV;
      } else if (adapterSetKey(target) !== adapterSetKey(this.applied)) {
        const t0 = performance.now();
        const live = this.ctx.liveSwap;
        const keep = live && this.kv.baseEnd > 0 && isAloraOnly(targetAdapters);
        await this.ctx.setAdapters(this.active(target));
        this.attachedKey = adapterSetKey(target);
        if (!keep) {
          if (live) await this.ctx.clear();
          this.kv = BASE_KV;
        }
        this.host.recordSwap(performance.now() - t0, live);
        if (live) this.swaps.live++;
        else this.swaps.recreated++;
        if (keep) this.swaps.kept++;
      }
      this.applied = target;
      this.appliedAdapters = targetAdapters;
      this.appliedVersion = version;
      this.settleWaiters(null);
    } catch (e) {
      this.settleWaiters(e, version);
      throw e;
    }
  }

  private settleWaiters(error: unknown, upTo = this.appliedVersion): void {
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.version <= upTo) {
        if (error) w.reject(error);
        else w.resolve();
      } else keep.push(w);
    }
    this.waiters = keep;
  }

  private active(set: AdapterSet): ActiveAdapter[] {
    return set.map(([name, scale]) => ({ adapter: this.host.resolveAdapter(name), scale }));
  }

  /** Create the context now (otherwise it is created on first use). */
  ready(): Promise<void> {
    this.ensureOpen();
    return this.serialize(() => this.applyDesired());
  }

  /** Forget the KV cache. */
  reset(): Promise<void> {
    this.ensureOpen();
    return this.serialize(async () => {
      await this.ctx?.clear();
      this.kv = BASE_KV;
    });
  }

  /** How the applied set evaluates `tokens` (base, plain, or aLoRA from the last invocation start in them). */
  private plan(tokens: readonly number[]): EvalPlan {
    return planEvaluation(this.appliedAdapters, adapterSetKey(this.applied), tokens);
  }

  /** Attach `set` to the context unless it is attached already (live contexts keep their cache). */
  private async attach(set: AdapterSet): Promise<void> {
    const key = adapterSetKey(set);
    if (key === this.attachedKey) return;
    await this.ctx!.setAdapters(this.active(set));
    this.attachedKey = key;
  }

  /**
   * Get the context ready to evaluate `tokens` as `plan` says: keep the longest cached prefix the plan allows
   * (with `reuse`), evaluate the tokens before an aLoRA start with the base, and attach the adapters that
   * evaluate the rest. Returns the cached prefix kept and the tokens left to evaluate (at least one).
   */
  private async prepare(tokens: readonly number[], plan: EvalPlan, reuseCache: boolean): Promise<{ reuse: number; input: number[] }> {
    const ctx = this.ctx!;
    let reuse = 0;
    if (reuseCache) {
      const cached = ctx.cachedTokens;
      const limit = Math.min(keptPrefixLimit(this.kv, plan), tokens.length - 1); // at least one token to evaluate
      while (reuse < cached.length && reuse < limit && cached[reuse] === tokens[reuse]) reuse++;
    }
    if (reuse === 0) await ctx.clear();
    else await ctx.truncate(reuse);
    this.kv = { key: plan.key, baseEnd: plan.baseEnd };
    let from = reuse;
    if (plan.path === "alora" && plan.start! > reuse) {
      await this.attach([]);
      await ctx.evaluate(tokens.slice(reuse, plan.start));
      from = plan.start!;
    }
    await this.attach(plan.path === "plain" || plan.path === "alora" ? this.applied : []);
    return { reuse, input: tokens.slice(from) };
  }

  /**
   * Generate text after `prompt` (text, or token ids used as they are): iterate the returned object for
   * text pieces, await `.result` for the full result. Calls on one session run one after another.
   */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): Generation {
    this.ensureOpen();
    const g = new Generation();
    this.busy++;
    void this.serialize(async () => {
      try {
        g.finish(await this.run(prompt, options, g));
      } catch (e) {
        g.fail(e);
      } finally {
        this.busy--;
      }
    });
    return g;
  }

  /** `generate` without streaming: the final result. */
  complete(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.generate(prompt, options).result;
  }

  /**
   * Next-token log-probabilities after `prompt` under the current set (fresh evaluation, cache cleared; an
   * aLoRA set evaluates the tokens before its invocation with the base).
   */
  nextLogProbs(prompt: string | readonly number[], addBos = true): Promise<Float64Array> {
    this.ensureOpen();
    return this.serialize(async () => {
      await this.applyDesired();
      const tokens = typeof prompt === "string" ? this.host.backend.tokenize(prompt, addBos) : [...prompt];
      if (tokens.length === 0) throw new InvalidArgumentError("empty prompt (and no BOS token)");
      const { input } = await this.prepare(tokens, this.plan(tokens), false);
      return this.ctx!.nextLogProbs(input);
    });
  }

  private async run(prompt: string | readonly number[], o: GenerateOptions, g: Generation): Promise<GenerationResult> {
    const backend = this.host.backend;
    const maxTokensAsked = o.maxTokens ?? 64;
    if (!Number.isInteger(maxTokensAsked) || maxTokensAsked < 0) throw new InvalidArgumentError(`maxTokens must be a whole number >= 0`);
    const sampling = {
      temperature: o.temperature ?? 0,
      topK: o.topK ?? 40,
      topP: o.topP ?? 0.95,
      seed: o.seed ?? 0,
    };
    const t0 = performance.now();
    if (this.disposed) throw new DisposedError("session");
    await this.applyDesired();
    const ctx0 = this.ctx;
    if (!ctx0) throw new DisposedError("session");
    const promptTokens = typeof prompt === "string" ? backend.tokenize(prompt, o.addBos ?? true) : [...prompt];
    if (promptTokens.length === 0) throw new InvalidArgumentError("empty prompt (and no BOS token)");
    if (promptTokens.length >= this.contextSize) {
      throw new InvalidArgumentError(`prompt has ${promptTokens.length} tokens; the context holds ${this.contextSize}`);
    }
    const maxTokens = Math.min(maxTokensAsked, this.contextSize - promptTokens.length);

    // Reuse the cached prefix where it is what this set computes (see keptPrefixLimit).
    const tPrefill = performance.now();
    let plan = this.plan(promptTokens);
    const prepared = await this.prepare(promptTokens, plan, o.reuseCache ?? true);
    const reuse = prepared.reuse;

    const out = new TokenText(backend, promptTokens, stopList(o.stop), g);
    const generated = out.tokens;
    // Stopped from outside: the caller's signal, the consumer leaving the loop, or disposal.
    const stopped = () => o.signal?.aborted === true || g.aborted || this.disposed;
    let finish: FinishReason = maxTokens < maxTokensAsked ? "context" : "length";
    let prefillMs = 0;
    let firstAt = 0;
    let lastAt = 0;
    let changes = 0;
    let input: number[] = prepared.input;
    const prefillTokens = promptTokens.length - reuse;
    let extraEvaluated = 0;

    outer: while (generated.length < maxTokens) {
      if (stopped()) {
        finish = "abort";
        break;
      }
      let changed = false;
      for await (const tok of this.ctx!.sample(input, sampling)) {
        const now = performance.now();
        if (firstAt === 0) {
          firstAt = now;
          prefillMs = now - tPrefill;
        }
        lastAt = now;
        const end = out.add(tok);
        if (end) {
          finish = end;
          break outer;
        }
        if (generated.length >= maxTokens) break outer;
        if (stopped()) {
          finish = "abort";
          break outer;
        }
        if (this.desiredVersion !== this.appliedVersion) {
          changed = true;
          break;
        }
      }
      if (!changed) break; // the context ended the stream
      await this.applyDesired();
      changes++;
      const all = [...promptTokens, ...generated];
      plan = this.plan(promptTokens);
      const again = await this.prepare(all, plan, true);
      input = again.input;
      extraEvaluated += all.length - again.reuse;
    }
    const text = out.finish(finish);
    const end = performance.now();
    const decodeTokens = Math.max(0, generated.length - 1) + extraEvaluated;
    const decodeMs = firstAt > 0 ? lastAt - firstAt : 0;
    const result: GenerationResult = {
      text,
      tokens: generated,
      promptTokens: promptTokens.length,
      reusedPromptTokens: reuse,
      generatedTokens: generated.length,
      finishReason: finish,
      adapters: adapterSetObject(this.applied),
      adapterChanges: changes,
      adapterPath: plan.path,
      ...(plan.start !== undefined ? { invocationStart: plan.start } : {}),
      timings: {
        prefillTokens,
        prefillMs,
        decodeTokens,
        decodeMs,
        totalMs: end - t0,
        prefillTokensPerSecond: prefillMs > 0 ? (prefillTokens / prefillMs) * 1000 : 0,
        decodeTokensPerSecond: decodeMs > 0 ? (decodeTokens / decodeMs) * 1000 : 0,
      },
    };
    this.host.recordTokens(result);
    return result;
  }

  /** Free the context: a running generation stops after its current token; queued ones fail; pending adapter changes resolve. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.serialize(async () => {
      const ctx = this.ctx;
      this.ctx = null;
      this.applied = [];
      this.appliedAdapters = [];
      await ctx?.dispose();
    });
    this.settleWaiters(null, Infinity);
    this.host.sessionClosed(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
