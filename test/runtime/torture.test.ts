// Torture: 600 seeded interleavings of load, unload, swap, rescale and generate over 3 sessions.
import { describe, expect, it } from "vitest";
import { runTorture } from "../../bench/torture-check.js";
import { S1, S2, openCpu } from "./helpers.js";

describe("torture", () => {
  for (const swap of ["live", "recreate"] as const) {
    it(`every generation equals the fresh-context reference (${swap} swaps)`, async () => {
      const rt = await openCpu({ swap });
      try {
        const r = await runTorture(rt, { files: [S1, S2], operations: swap === "live" ? 600 : 200, seed: swap === "live" ? 1 : 2 });
        expect(r.mismatches).toEqual([]);
        expect(r.checked).toBeGreaterThan(swap === "live" ? 250 : 80);
        for (const op of ["load", "unload", "swap", "rescale", "generate", "generate-parallel"]) expect(r.counts[op], op).toBeGreaterThan(0);
        expect(rt.adapters.list()).toEqual([]);
        expect(rt.sessions).toEqual([]);
        const st = rt.stats();
        expect(swap === "live" ? st.swaps.live : st.swaps.recreated).toBeGreaterThan(swap === "live" ? 50 : 20);
        expect(swap === "live" ? st.swaps.recreated : st.swaps.live).toBe(0);
      } finally {
        await rt.dispose();
      }
    }, 60_000);
  }
});
