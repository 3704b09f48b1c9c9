// A pool keyed by adapter set over the scheduler: one context, a slot's KV states kept per set, LRU reuse, queueing.
import { AdapterNameError, DisposedError, InvalidArgumentError } from "../errors.js";
import { adapterSetKey, adapterSetObject, normalizeAdapterSet, type AdapterSet, type AdapterSetInput } from "./adapter-set.js";
import type { Generation, GenerationResult } from "./generation.js";
import type { ScheduleOptions, Scheduler, SchedulerOptions } from "./scheduler.js";

export interface PoolOptions {
  /**
   * Adapter sets whose KV states are kept live, and generations run at once (default 4): one sequence slot
   * each in one shared context. More concurrent generations wait in the queue.
   */
  maxSessions?: number;
  /** Bytes of parked KV states kept beyond the live ones, least recently used dropped first (default 256 MiB). */
  maxBytes?: number;
  contextSize?: number;
  /** Generations that may wait for a slot (default 1024). */
  queue?: number;
}

export interface PoolHost {
  scheduler(options: SchedulerOptions): Scheduler;
  defaultScale(name: string): number;
  isLoaded(name: string): boolean;
}

/** One adapter set of a pool: generations on it share that set's cached states. */
export class PoolSession {
  constructor(
    private readonly pool: SessionPool,
    private readonly set: AdapterSet,
  ) {}

  get adapters(): Record<string, number> {
    return adapterSetObject(this.set);
  }

  get adapterKey(): string {
    return adapterSetKey(this.set);
  }

  /** True once the pool is disposed or an adapter of the set was unloaded. */
  get isDisposed(): boolean {
    return this.pool.isDisposed || this.set.some(([name]) => !this.pool.isLoaded(name));
  }

  generate(prompt: string | readonly number[], options?: ScheduleOptions): Generation {
    if (this.isDisposed) throw new DisposedError("pool session");
    return this.pool.generate(this.adapters, prompt, options);
  }

  complete(prompt: string | readonly number[], options?: ScheduleOptions): Promise<GenerationResult> {
    return this.generate(prompt, options).result;
  }
}

export class SessionPool {
  private readonly scheduler: Scheduler;
  private disposed = false;
  readonly maxSessions: number;

  constructor(
    private readonly host: PoolHost,
    options: PoolOptions = {},
  ) {
    this.maxSessions = options.maxSessions ?? 4;
    if (!Number.isInteger(this.maxSessions) || this.maxSessions < 1) throw new InvalidArgumentError("maxSessions must be a whole number >= 1");
    if (options.maxBytes !== undefined && !(options.maxBytes >= 0)) throw new InvalidArgumentError("maxBytes must be >= 0");
    this.scheduler = host.scheduler({
      slots: this.maxSessions,
      queue: options.queue ?? 1024,
      contextSize: options.contextSize,
      cacheBytes: options.maxBytes,
    });
  }

  get isDisposed(): boolean {
    return this.disposed || this.scheduler.isDisposed;
  }

  /** @internal */
  isLoaded(name: string): boolean {
    return this.host.isLoaded(name);
  }

  /** The pool's handle for this adapter set (unknown names throw AdapterNameError). */
  get(adapters: AdapterSetInput = {}): PoolSession {
    if (this.isDisposed) throw new DisposedError("session pool");
    const set = normalizeAdapterSet(adapters, (n) => this.host.defaultScale(n));
    for (const [name] of set) if (!this.host.isLoaded(name)) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return new PoolSession(this, set);
  }

  /** Generate with this adapter set; waits for a slot when all are busy. */
  generate(adapters: AdapterSetInput, prompt: string | readonly number[], options?: ScheduleOptions): Generation {
    if (this.isDisposed) throw new DisposedError("session pool");
    return this.scheduler.generate(adapters, prompt, options);
  }

  /** Adapter sets whose states are held, least recently used first. */
  keys(): string[] {
    return this.scheduler.cachedSets();
  }

  /** Memory of the pool's context and parked states, bytes. */
  get bytes(): number {
    return this.scheduler.stats().memoryBytes;
  }

  /** Adapter sets whose states are held. */
  get size(): number {
    return this.keys().length;
  }

  /** Generations placed where their set's states were cached (hits) or not (misses); states of another set dropped (evictions). */
  get counts(): { hits: number; misses: number; evictions: number; parked: number; restored: number } {
    const c = this.scheduler.stats().counts;
    return { hits: c.hits, misses: c.misses, evictions: c.evictions, parked: c.parked, restored: c.restored };
  }

  /** The scheduler underneath (queue, per-set activity, latency histograms). */
  stats(): ReturnType<Scheduler["stats"]> {
    return this.scheduler.stats();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.scheduler.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
