// Arrival gathering: a group that arrived together is waited for, briefly; a lone client never waits; a wait that times out lowers the group.
import { describe, expect, it } from "vitest";
import { ArrivalGather } from "../../src/runtime/gather.js";

describe("ArrivalGather", () => {
  it("expects the rest of a group that was in flight at once, capped by the room left", () => {
    const g = new ArrivalGather();
    g.arrived("a", 1);
    expect(g.expected("a", 1, 8)).toBe(0); // a lone client
    for (let n = 2; n <= 4; n++) g.arrived("a", n);
    expect(g.expected("a", 1, 8)).toBe(3);
    expect(g.expected("a", 1, 2)).toBe(2);
    expect(g.expected("b", 1, 8)).toBe(0);
  });

  it("a wait ends as soon as the group is back, and at the latest after maxWaitMs, lowering the group to what came", async () => {
    const g = new ArrivalGather();
    g.arrived("a", 3);
    let inFlight = 1;
    const missing = () => g.expected("a", inFlight, 8);
    const t0 = performance.now();
    setTimeout(() => {
      inFlight = 2;
      g.arrived("a", 2);
    }, 5);
    setTimeout(() => {
      inFlight = 3;
      g.arrived("a", 3);
    }, 10);
    await g.wait("a", missing, () => inFlight, 5000);
    expect(performance.now() - t0).toBeLessThan(4000); // woken by the arrivals, not the timer
    expect(missing()).toBe(0);

    inFlight = 1;
    await g.wait("a", missing, () => inFlight, 20);
    expect(g.expected("a", 1, 8)).toBe(0); // nobody came: no wait next time
    expect(g.waits).toBe(2);
    expect(g.waitedMs).toBeGreaterThanOrEqual(19);
  });
});
