// A bounded pool of sessions keyed by adapter set: switching back to a task reuses its KV cache (LRU eviction).
import { DisposedError, InvalidArgumentError } from "../errors.js";
import { adapterSetKey, normalizeAdapterSet, type AdapterSetInput } from "./adapter-set.js";
import type { GenerateOptions, Session, SessionOptions } from "./session.js";
import type { Generation } from "./generation.js";

export interface PoolOptions {
  /** Most sessions kept (default 4); the least recently used one is disposed to make room. */
  maxSessions?: number;
  /**
   * Most bytes of context memory kept (default: no limit). A new session is assumed to need as much as the
   * largest one held; least recently used sessions are disposed until it fits (one session is always allowed).
   */
  maxBytes?: number;
  contextSize?: number;
}

export interface PoolHost {
  session(options: SessionOptions): Session;
  defaultScale(name: string): number;
}

export class SessionPool {
  private readonly sessions = new Map<string, Session>(); // insertion order = recency order
  private disposed = false;
  readonly maxSessions: number;
  /** Lookups that found a session, and ones that had to create one. */
  readonly counts = { hits: 0, misses: 0, evictions: 0 };

  constructor(
    private readonly host: PoolHost,
    private readonly options: PoolOptions = {},
  ) {
    this.maxSessions = options.maxSessions ?? 4;
    if (!Number.isInteger(this.maxSessions) || this.maxSessions < 1) throw new InvalidArgumentError("maxSessions must be a whole number >= 1");
    if (options.maxBytes !== undefined && !(options.maxBytes > 0)) throw new InvalidArgumentError("maxBytes must be > 0");
  }

  /** The session for this adapter set (created if needed, evicting the least recently used). */
  get(adapters: AdapterSetInput = {}): Session {
    if (this.disposed) throw new DisposedError("session pool");
    const set = normalizeAdapterSet(adapters, (n) => this.host.defaultScale(n));
    const key = adapterSetKey(set);
    const hit = this.sessions.get(key);
    if (hit && !hit.isDisposed) {
      this.sessions.delete(key);
      this.sessions.set(key, hit);
      this.counts.hits++;
      return hit;
    }
    this.counts.misses++;
    const evictOldest = () => {
      const [oldKey, old] = this.sessions.entries().next().value as [string, Session];
      this.sessions.delete(oldKey);
      this.counts.evictions++;
      void old.dispose();
    };
    while (this.sessions.size >= this.maxSessions) evictOldest();
    if (this.options.maxBytes !== undefined) {
      const need = Math.max(0, ...[...this.sessions.values()].map((x) => x.memoryBytes));
      while (this.sessions.size > 0 && this.bytes + need > this.options.maxBytes) evictOldest();
    }
    const s = this.host.session({ adapters: Object.fromEntries(set), contextSize: this.options.contextSize });
    this.sessions.set(key, s);
    return s;
  }

  /** Generate with the session of this adapter set. */
  generate(adapters: AdapterSetInput, prompt: string | readonly number[], options?: GenerateOptions): Generation {
    return this.get(adapters).generate(prompt, options);
  }

  /** Keys (adapter sets) held, least recently used first. */
  keys(): string[] {
    return [...this.sessions.keys()];
  }

  /** Context memory of the sessions held, bytes. */
  get bytes(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.memoryBytes;
    return n;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** @internal dispose the sessions whose set names `adapter`. */
  async drop(adapter: string): Promise<void> {
    const victims: Session[] = [];
    for (const [key, s] of this.sessions) {
      if (s.uses(adapter) || key.split(",").some((p) => p.startsWith(`${adapter}=`))) {
        this.sessions.delete(key);
        victims.push(s);
      }
    }
    await Promise.all(victims.map((s) => s.dispose()));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.dispose()));
  }
}
