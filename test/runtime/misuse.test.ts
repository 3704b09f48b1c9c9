// The API under misuse: leaving a for-await loop stops the generation, dispose aborts promptly, calls after dispose throw DisposedError.
import { describe, expect, it } from "vitest";
import { DisposedError } from "../../src/errors.js";
import type { Generation } from "../../src/runtime/index.js";
import { S1, openCpu } from "./helpers.js";

const PROMPT = "Once upon a time";
// More tokens than the context holds: without a stop the generation runs until the context is full.
const ENDLESS = { maxTokens: 100_000 };

/** Reads one piece, then leaves the loop; returns how many pieces were read. */
async function readOneThenBreak(g: Generation): Promise<number> {
  let n = 0;
  for await (const _ of g) {
    n++;
    break;
  }
  return n;
}

for (const backend of ["native", "wasm"] as const) {
  describe(`API misuse (${backend})`, () => {
    it("breaking out of for-await stops a session's generation within one token", async () => {
      const rt = await openCpu({ backend, contextSize: 2048 });
      try {
        const s = rt.session();
        const g = s.generate(PROMPT, ENDLESS);
        expect(await readOneThenBreak(g)).toBe(1);
        const r = await g.result;
        expect(r.finishReason).toBe("abort");
        expect(r.generatedTokens).toBeLessThanOrEqual(2);
        // the session is free for the next call at once
        expect((await s.complete(PROMPT, { maxTokens: 3 })).generatedTokens).toBe(3);
      } finally {
        await rt.dispose();
      }
    });

    it("breaking out of for-await stops a scheduled generation within one token", async () => {
      const rt = await openCpu({ backend, contextSize: 2048 });
      try {
        const sch = rt.scheduler({ slots: 2 });
        const g = sch.generate({}, PROMPT, { ...ENDLESS, ignoreEos: true });
        await readOneThenBreak(g);
        const r = await g.result;
        expect(r.finishReason).toBe("abort");
        expect(r.generatedTokens).toBeLessThanOrEqual(2);
        g.abort(); // after the end: nothing happens
      } finally {
        await rt.dispose();
      }
    });

    it("rt.dispose() during generations aborts them and returns before they would have ended", async () => {
      const rt = await openCpu({ backend, contextSize: 2048 });
      const session = rt.session().generate(PROMPT, ENDLESS);
      const scheduled = rt.scheduler().generate({}, PROMPT, { ...ENDLESS, ignoreEos: true });
      const pooled = rt.pool({ maxSessions: 1 }).generate({}, PROMPT, { ...ENDLESS, ignoreEos: true });
      await Promise.all([session, scheduled, pooled].map((g) => g[Symbol.asyncIterator]().next()));
      await rt.dispose();
      for (const g of [session, scheduled, pooled]) {
        expect(g.done).toBe(true); // settled by the time dispose returned
        const r = await g.result;
        expect(r.finishReason).toBe("abort");
        expect(r.generatedTokens).toBeLessThan(500);
      }
    });

    it("calls after dispose throw DisposedError", async () => {
      const rt = await openCpu({ backend });
      await rt.adapters.load("s1", S1);
      const s = rt.session();
      const sch = rt.scheduler();
      await rt.dispose();
      await expect(rt.adapters.load("s2", S1)).rejects.toThrow(DisposedError);
      await expect(rt.adapters.unload("s1")).rejects.toThrow(DisposedError);
      expect(() => rt.session()).toThrow(DisposedError);
      expect(() => rt.pool()).toThrow(DisposedError);
      expect(() => rt.scheduler()).toThrow(DisposedError);
      expect(() => s.generate(PROMPT)).toThrow(DisposedError);
      expect(() => sch.generate({}, PROMPT)).toThrow(DisposedError);
      await rt.dispose(); // twice is fine
    });
  });
}
