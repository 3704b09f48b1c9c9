// Parked KV states: sequences' saved states keyed by (adapter set with scales, tokens), bounded by bytes, LRU.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BackendSequence } from "../backends/backend.js";
import { keptPrefixLimit, type KvOrigin } from "./kv-plan.js";

export interface ParkedState extends KvOrigin {
  /** The adapter-set cache key the states were computed under (those from `baseEnd` on: before it, the base's). */
  readonly key: string;
  readonly tokens: readonly number[];
  readonly file: string;
  readonly bytes: number;
  lastUsed: number;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * States parked by the scheduler when a slot is taken for other work, restored when a request with the same
 * adapter set and a shared prefix comes back. States computed under one set are never offered to another,
 * except those computed by the base (a base request's, or an aLoRA request's before its invocation), which
 * serve any request that evaluates them with the base too (see keptPrefixLimit). Files live in a private
 * temporary folder removed on dispose.
 */
export class ParkedStates {
  private readonly entries = new Set<ParkedState>();
  private dir: string | null = null;
  private clock = 0;
  private serial = 0;
  bytes = 0;
  readonly counts = { parked: 0, restored: 0, evicted: 0 };

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The parked state with the longest common prefix with `tokens` that `plan` can keep, if any. */
  lookup(plan: KvOrigin, tokens: readonly number[]): { state: ParkedState; prefix: number } | null {
    let best: { state: ParkedState; prefix: number } | null = null;
    for (const s of this.entries) {
      const limit = keptPrefixLimit(s, plan);
      if (limit === 0) continue;
      const p = Math.min(limit, commonPrefix(s.tokens, tokens));
      if (p > 0 && (!best || p > best.prefix)) best = { state: s, prefix: p };
    }
    return best;
  }

  /** Save `seq`'s states as computed per `origin`; evicts the least recently used states beyond the byte bound. */
  async park(seq: BackendSequence, origin: KvOrigin): Promise<void> {
    if (!seq.saveState || this.maxBytes <= 0) return;
    const tokens = [...seq.cachedTokens];
    if (tokens.length === 0) return;
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-kv-"));
    const file = path.join(this.dir, `${++this.serial}.state`);
    let bytes: number;
    try {
      bytes = await seq.saveState(file);
    } catch {
      await fs.promises.rm(file, { force: true });
      return; // parking is an optimisation: the request goes on without it
    }
    if (bytes > this.maxBytes) {
      await fs.promises.rm(file, { force: true });
      return;
    }
    this.entries.add({ key: origin.key, baseEnd: origin.baseEnd, tokens, file, bytes, lastUsed: ++this.clock });
    this.bytes += bytes;
    this.counts.parked++;
    while (this.bytes > this.maxBytes) {
      let oldest: ParkedState | null = null;
      for (const s of this.entries) if (!oldest || s.lastUsed < oldest.lastUsed) oldest = s;
      await this.remove(oldest!);
      this.counts.evicted++;
    }
  }

  /** Load `state` into `seq` and forget it (the sequence now holds it). */
  async restore(state: ParkedState, seq: BackendSequence): Promise<boolean> {
    if (!seq.loadState || !this.entries.has(state)) return false;
    try {
      await seq.loadState(state.file);
      this.counts.restored++;
      return true;
    } catch {
      await seq.clear();
      return false;
    } finally {
      await this.remove(state);
    }
  }

  /** Forget every state whose key matches. */
  async drop(match: (key: string) => boolean): Promise<void> {
    for (const s of [...this.entries]) if (match(s.key)) await this.remove(s);
  }

  private async remove(s: ParkedState): Promise<void> {
    if (!this.entries.delete(s)) return;
    this.bytes -= s.bytes;
    await fs.promises.rm(s.file, { force: true });
  }

  async dispose(): Promise<void> {
    this.entries.clear();
    this.bytes = 0;
    if (this.dir) await fs.promises.rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
