// The worker pool's shared queue (runShared): independent calls taken by whichever thread is free, all run once, in batches past the queue's size.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { createPool, type KernelCall, type KernelPool } from "../../src/core/index.js";

let pool: KernelPool;
beforeAll(async () => {
  pool = await createPool({ threads: 2, maxBytes: 64 << 20 });
});
afterAll(() => pool.dispose());

describe("worker pool: shared queue", () => {
  it("runs every call exactly once, over more calls than the queue holds at a time", () => {
    const core = pool.core, n = 600, len = 37;
    const a = core.arena.alloc(n * len * 4), b = core.arena.alloc(n * len * 4), out = core.arena.alloc(n * len * 4);
    try {
      const av = core.arena.f32(a, n * len), bv = core.arena.f32(b, n * len);
      for (let i = 0; i < n * len; i++) {
        av[i] = i;
        bv[i] = 0.5 * i;
      }
      // out = a + b, then out += b for each range: a call run twice or not at all shows
      const calls: KernelCall[] = [];
      for (let k = 0; k < n; k++) calls.push({ fn: "add_f32", args: [a + k * len * 4, b + k * len * 4, out + k * len * 4, len] });
      pool.runShared(calls);
      pool.runShared(calls.map((c) => ({ fn: "add_f32", args: [c.args[2], c.args[1], c.args[2], len] })));
      const got = core.arena.f32(out, n * len);
      for (let i = 0; i < n * len; i++) expect(got[i]).toBe(2 * i);
    } finally {
      for (const p of [a, b, out]) core.arena.release(p);
    }
  });

  it("runs calls of more arguments than a queue record holds through the threads' own slots", () => {
    const core = pool.core, len = 8;
    const x = core.arena.alloc(len * 4), y = core.arena.alloc(len * 4);
    try {
      core.arena.f32(x, len).set([1, 2, 3, 4, 5, 6, 7, 8]);
      // 15 arguments: one more than a record takes (unused trailing arguments are ignored by wasm)
      pool.runShared([{ fn: "add_f32", args: [x, x, y, len, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }]);
      expect([...core.arena.f32(y, len)]).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    } finally {
      core.arena.release(x);
      core.arena.release(y);
    }
  });

  it("polls between rounds by default only while every thread has a core, and gives the same results sleeping", async () => {
    const cores = availableParallelism();
    const over = await createPool({ threads: cores + 1, maxBytes: 64 << 20 });
    const sleeping = await createPool({ threads: 2, maxBytes: 64 << 20, spinPolls: 0 });
    try {
      expect(over.polls).toBe(false);
      expect(sleeping.polls).toBe(false);
      expect(pool.polls).toBe(cores >= 2);
      for (const p of [over, sleeping]) {
        const core = p.core, len = 64;
        const x = core.arena.alloc(len * 4), y = core.arena.alloc(len * 4);
        core.arena.f32(x, len).set(Array.from({ length: len }, (_, i) => i));
        const calls: KernelCall[] = Array.from({ length: 8 }, (_, k) => ({ fn: "add_f32", args: [x + 32 * k, x + 32 * k, y + 32 * k, 8] }));
        p.runShared(calls);
        expect([...core.arena.f32(y, len)]).toEqual(Array.from({ length: len }, (_, i) => 2 * i));
      }
    } finally {
      over.dispose();
      sleeping.dispose();
    }
  });
});
