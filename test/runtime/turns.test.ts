// The scheduler's pure parts: the fair queue (FCFS within a set, round-robin across sets) and the turn policy.
import { describe, expect, it } from "vitest";
import { FairQueue } from "../../src/runtime/fair-queue.js";
import { TurnPolicy } from "../../src/runtime/turns.js";

describe("fair queue", () => {
  it("serves the oldest item of each key in rotation", () => {
    const q = new FairQueue<string>();
    for (const x of ["a1", "a2", "a3", "b1", "b2", "c1"]) q.push(x[0], x);
    expect(q.size).toBe(6);
    const out: string[] = [];
    for (let x = q.next(); x !== undefined; x = q.next()) out.push(x);
    expect(out).toEqual(["a1", "b1", "c1", "a2", "b2", "a3"]);
    expect(q.size).toBe(0);
  });

  it("removes one item, drains by key", () => {
    const q = new FairQueue<string>();
    for (const x of ["a1", "b1", "a2", "c1"]) q.push(x[0], x);
    expect(q.remove("a", "a1")).toBe(true);
    expect(q.remove("a", "a1")).toBe(false);
    expect(q.drain((k) => k === "c")).toEqual(["c1"]);
    expect(q.items()).toEqual(["a2", "b1"]);
    expect(q.next()).toBe("a2"); // key a has not been served yet: it keeps its place in the rotation
    expect(q.size).toBe(1);
  });
});

describe("turn policy", () => {
  const run = (keys: string[], waiting: string[] = []) => keys.map((key, id) => ({ key, id, started: !waiting.includes(key) }));

  it("gives each set its turn for turnTokens steps, in rotation", () => {
    const p = new TurnPolicy(2);
    const r = run(["a", "b", "c"]);
    expect(Array.from({ length: 8 }, () => p.pick(r))).toEqual(["a", "a", "b", "b", "c", "c", "a", "a"]);
  });

  it("a request waiting for its prompt gets one step out of turn; a set with nothing left leaves the rotation", () => {
    const p = new TurnPolicy(3);
    expect(p.pick(run(["a", "b"]))).toBe("a");
    expect(p.pick(run(["a", "b", "d"], ["d"]))).toBe("d");
    expect(p.pick(run(["a", "b", "d"]))).toBe("a"); // back to the holder, which keeps its turn
    expect(p.pick(run(["a", "b", "d"]))).toBe("a");
    expect(p.pick(run(["a", "b", "d"]))).toBe("b");
    expect(p.pick(run(["d"]))).toBe("d");
    expect(p.pick([])).toBeNull();
  });

  it("chooses the turn length so that the measured swap cost is about 2.5% of a turn", () => {
    const p = new TurnPolicy();
    expect(p.turnTokens).toBe(4); // nothing measured yet
    p.observe(12, true, "a"); // no plain step of a yet: nothing to compare with
    expect(p.turnTokens).toBe(4);
    p.observe(10, false, "a");
    p.observe(12, true, "a");
    expect(p.swapExtraMs).toBeCloseTo(2);
    expect(p.turnTokens).toBe(8); // 2 ms against 2.5% of 10 ms
    for (let i = 0; i < 50; i++) p.observe(40, true, "a");
    expect(p.turnTokens).toBe(16); // capped
    expect(new TurnPolicy(1).turnTokens).toBe(1);
  });

  it("compares a step after a swap with the same set's plain steps, not another set's bigger batch", () => {
    const p = new TurnPolicy();
    for (let i = 0; i < 5; i++) p.observe(30, false, "four"); // four sequences a step
    for (let i = 0; i < 5; i++) p.observe(8, false, "one");
    for (let i = 0; i < 5; i++) p.observe(10, true, "one");
    expect(p.swapExtraMs).toBeCloseTo(2);
    // one noisy step after a swap does not move the median
    p.observe(8, true, "one");
    expect(p.swapExtraMs).toBeCloseTo(2);
  });

  it("compares a step after a swap with plain steps of as many sequences of that set", () => {
    const p = new TurnPolicy();
    for (let i = 0; i < 5; i++) p.observe(14, false, "a", 2);
    for (let i = 0; i < 5; i++) p.observe(7, false, "a", 1);
    // one of a's two sequences finished: its next step after a swap has one sequence
    p.observe(9.5, true, "a", 1);
    expect(p.swapExtraMs).toBeCloseTo(2.5);
  });

  it("recovers from a swap cost estimated at zero: every turn keeps a plain step to compare with", () => {
    const p = new TurnPolicy();
    p.observe(10, false, "a");
    p.observe(10, true, "a");
    expect(p.swapExtraMs).toBe(0);
    expect(p.pick([])).toBeNull(); // the server went idle: the per-set steps are forgotten
    expect(p.turnTokens).toBe(2);
    // two sets taking turns, a swap adding 3 ms to the step after it
    const r = run(["a", "b"]);
    let applied = "";
    for (let i = 0; i < 80; i++) {
      const key = p.pick(r)!;
      const swapped = key !== applied;
      applied = key;
      p.observe(swapped ? 13 : 10, swapped, key);
    }
    expect(p.swapExtraMs).toBeCloseTo(3);
    expect(p.turnTokens).toBe(12); // 3 ms against 2.5% of 10 ms
  });
});
