// The scheduler's waiting requests: first come first served within an adapter set, round-robin across sets.

/** Waiting items grouped by key; `next()` takes the oldest item of the next key in rotation. */
export class FairQueue<T> {
  /** Items per key; the Map's order is the rotation (the next key to serve first). */
  private readonly byKey = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(key: string, item: T): void {
    const q = this.byKey.get(key);
    if (q) q.push(item);
    else this.byKey.set(key, [item]);
    this.count++;
  }

  /** The oldest item of the next key; that key moves to the back of the rotation. */
  next(): T | undefined {
    for (const [key, q] of this.byKey) {
      const item = q.shift()!;
      this.byKey.delete(key);
      if (q.length > 0) this.byKey.set(key, q);
      this.count--;
      return item;
    }
    return undefined;
  }

  /** The item `next()` would take, left in place. */
  peek(): T | undefined {
    for (const q of this.byKey.values()) return q[0];
    return undefined;
  }

  /** Removes one waiting item; false when it is not waiting. */
  remove(key: string, item: T): boolean {
    const q = this.byKey.get(key);
    const i = q?.indexOf(item) ?? -1;
    if (i < 0) return false;
    q!.splice(i, 1);
    if (q!.length === 0) this.byKey.delete(key);
    this.count--;
    return true;
  }

  /** Removes and returns every item whose key matches. */
  drain(match: (key: string) => boolean = () => true): T[] {
    const out: T[] = [];
    for (const [key, q] of [...this.byKey]) {
      if (!match(key)) continue;
      this.byKey.delete(key);
      this.count -= q.length;
      out.push(...q);
    }
    return out;
  }

  items(): T[] {
    return [...this.byKey.values()].flat();
  }
}
