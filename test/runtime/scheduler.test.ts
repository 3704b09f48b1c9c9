// The scheduler: batched requests with their own adapter sets equal lone sessions, bounded queue, fair order, abort, KV keyed by set.
import { copyFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AdapterNameError, DisposedError, QueueFullError } from "../../src/errors.js";
import type { Backend } from "../../src/backends/backend.js";
import type { Runtime, Scheduler } from "../../src/runtime/index.js";
import { scratchDir } from "../fixtures.js";
import type { Generation } from "../../src/runtime/index.js";
import { S1, S2, openCpu } from "./helpers.js";

/** Waits for a generation's first text piece without stopping it (leaving a `for await` loop would). */
async function started(g: Generation): Promise<void> {
  await g[Symbol.asyncIterator]().next();
}

const PROMPTS = ["Once upon a time", "The little dog", "One day, Lily went", "Tom had a big red ball", "The sun was hot", "A girl named Sue", "There was a cat", "Mom said"];
const SETS: Record<string, number>[] = [{}, { s1: 1 }, { s2: 1 }, { s1: 0.5, s2: 0.5 }];
const LONG = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her mom.";

async function lone(rt: Runtime, set: Record<string, number>, prompt: string, maxTokens: number, sampling: { temperature?: number; seed?: number } = {}): Promise<string> {
  const s = rt.session({ adapters: set });
  try {
    return (await s.complete(prompt, { maxTokens, ...sampling })).text;
  } finally {
    await s.dispose();
  }
}

for (const backend of ["native", "wasm"] as const) {
  describe(`scheduler (${backend})`, () => {
    let rt: Runtime;
    beforeAll(async () => {
      rt = await openCpu({ backend });
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
    });
    afterAll(async () => rt?.dispose());

    it("runs 8 concurrent requests over 4 adapter sets, each equal to the same request alone", async () => {
      const expected = await Promise.all(PROMPTS.map((p, i) => lone(rt, SETS[i % 4], p, 20)));
      const sch = rt.scheduler({ slots: 4, queue: 8 });
      const results = await Promise.all(PROMPTS.map((p, i) => sch.complete(SETS[i % 4], p, { maxTokens: 20 })));
      expect(results.map((r) => r.text)).toEqual(expected);
      expect(results.every((r) => r.generatedTokens === 20 && r.finishReason === "length")).toBe(true);
      const st = sch.stats();
      expect(st.counts.finished).toBe(8);
      if (backend === "native") expect(st.counts.swaps).toBeGreaterThan(3); // sets took turns on one context
      await sch.dispose();
    });

    it.runIf(backend === "wasm")("advances every running sequence, whatever its set, in one decodeBatch call per step", async () => {
      const sampled = { temperature: 0.9, seed: 7 };
      const expected = await Promise.all(PROMPTS.map((p, i) => lone(rt, SETS[i % 4], p, 20, i >= 6 ? sampled : {})));
      const decodeBatch = rt.backend.decodeBatch!.bind(rt.backend);
      const calls: { rows: number; sets: number }[] = [];
      const spy = vi.spyOn(rt.backend as Required<Backend>, "decodeBatch").mockImplementation(async (steps) => {
        const sets = new Set(steps.map((s) => (s.context as unknown as { engine: { setKey: string } }).engine.setKey));
        calls.push({ rows: steps.length, sets: sets.size });
        return decodeBatch(steps);
      });
      const sch = rt.scheduler({ slots: 4, queue: 8 });
      try {
        const results = await Promise.all(PROMPTS.map((p, i) => sch.complete(SETS[i % 4], p, { maxTokens: 20, ...(i >= 6 ? sampled : {}) })));
        expect(results.map((r) => r.text)).toEqual(expected);
        const st = sch.stats();
        expect(calls.length).toBe(st.counts.steps); // one call per step
        expect(Math.max(...calls.map((c) => c.sets))).toBe(4); // base, s1, s2 and the mix in one call
        expect(Math.max(...calls.map((c) => c.rows))).toBe(4);
        expect(calls.reduce((n, c) => n + c.rows, 0)).toBe(st.counts.generatedTokens); // each row gave one token
        expect(st.counts.generatedTokens).toBe(8 * 20);
        expect([st.counts.mixedBatchCalls, st.counts.mixedBatchRows]).toEqual([calls.length, st.counts.generatedTokens]);
      } finally {
        spy.mockRestore();
        await sch.dispose();
      }
    });

    it.runIf(backend === "wasm")("prompts of clients that came together before share the first step when they come back a moment apart", async () => {
      const decodeBatch = rt.backend.decodeBatch!.bind(rt.backend);
      const prompts: number[] = []; // prompts started by each call
      const spy = vi.spyOn(rt.backend as Required<Backend>, "decodeBatch").mockImplementation(async (steps) => {
        prompts.push(steps.filter((s) => s.restart).length);
        return decodeBatch(steps);
      });
      const run = (sch: Scheduler, i: number) => sch.complete(SETS[i], PROMPTS[i], { maxTokens: 4 });
      try {
        for (const gatherMs of [0, 500]) {
          const sch = rt.scheduler({ slots: 4, gatherMs });
          await Promise.all([0, 1, 2, 3].map((i) => run(sch, i))); // four clients at once
          prompts.length = 0;
          // they come back a moment apart: the first one's step waits for the others
          const first = run(sch, 0);
          await new Promise((r) => setTimeout(r, 20));
          const texts = await Promise.all([first, ...[1, 2, 3].map((i) => run(sch, i))]);
          expect(prompts[0], `gatherMs ${gatherMs}`).toBe(gatherMs > 0 ? 4 : 1);
          expect(texts.map((r) => r.text)).toEqual(await Promise.all([0, 1, 2, 3].map((i) => lone(rt, SETS[i], PROMPTS[i], 4))));
          expect(sch.stats().counts.gatherWaits).toBe(gatherMs > 0 ? 1 : 0);
          // a lone client after them: one wait ends without the group; none follows
          await sch.complete({}, PROMPTS[4], { maxTokens: 2 });
          await sch.complete({}, PROMPTS[5], { maxTokens: 2 });
          expect(sch.stats().counts.gatherWaits).toBe(gatherMs > 0 ? 2 : 0);
          await sch.dispose();
        }
        // a request the server is still reading is waited for too
        const sch = rt.scheduler({ slots: 4, gatherMs: 500 });
        await sch.ready(); // as a server does before it listens
        prompts.length = 0;
        const done = sch.receiving();
        const first = run(sch, 0);
        await new Promise((r) => setTimeout(r, 20));
        const second = run(sch, 1);
        done();
        await Promise.all([first, second]);
        expect(prompts[0]).toBe(2);
        await sch.dispose();
      } finally {
        spy.mockRestore();
      }
    });

    it("never reuses KV states computed under another adapter set or scale; reuses its own", async () => {
      const sch = rt.scheduler({ slots: 1 });
      const first = await sch.complete({ s1: 1 }, LONG, { maxTokens: 6 });
      expect(first.reusedPromptTokens).toBe(0);
      const other = await sch.complete({ s2: 1 }, LONG, { maxTokens: 6 });
      expect(other.reusedPromptTokens).toBe(0);
      expect(other.text).toBe(await lone(rt, { s2: 1 }, LONG, 6));
      const rescaled = await sch.complete({ s2: 0.5 }, LONG, { maxTokens: 6 });
      expect(rescaled.reusedPromptTokens).toBe(0);
      expect(rescaled.text).toBe(await lone(rt, { s2: 0.5 }, LONG, 6));
      const again = await sch.complete({ s2: 0.5 }, LONG, { maxTokens: 6 });
      expect(again.reusedPromptTokens).toBe(again.promptTokens - 1);
      expect(again.text).toBe(rescaled.text);
      // the same name bound to another file is another adapter: nothing cached under the old one is used
      const dir = scratchDir();
      const [c1, c2] = [path.join(dir, "c1.gguf"), path.join(dir, "c2.gguf")];
      copyFileSync(S1, c1);
      copyFileSync(S2, c2);
      await rt.adapters.load("swap", c1);
      await sch.complete({ swap: 1 }, LONG, { maxTokens: 6 });
      await rt.adapters.unload("swap");
      await rt.adapters.load("swap", c2);
      const reloaded = await sch.complete({ swap: 1 }, LONG, { maxTokens: 6 });
      expect(reloaded.reusedPromptTokens).toBe(0);
      expect(reloaded.text).toBe(other.text);
      await rt.adapters.unload("swap");
      await sch.dispose();
    });

    it("queues beyond its slots, refuses beyond its queue, and admits sets in turn, first come first served within a set", async () => {
      const sch = rt.scheduler({ slots: 1, queue: 5 });
      const order: string[] = [];
      const run = (set: Record<string, number>, tag: string, n = 3) => {
        const g = sch.generate(set, PROMPTS[0], { maxTokens: n });
        return g.result.then((r) => (order.push(tag), r));
      };
      const first = sch.generate({}, PROMPTS[0], { maxTokens: 12 });
      const busy = first.result.then((r) => (order.push("busy"), r));
      await started(first);
      const jobs = [run({ s1: 1 }, "a1"), run({ s1: 1 }, "a2"), run({ s1: 1 }, "a3"), run({ s2: 1 }, "b1"), run({ s2: 1 }, "b2")];
      expect(() => sch.generate({ s2: 1 }, PROMPTS[0], { maxTokens: 1 })).toThrow(QueueFullError);
      expect(sch.stats().queued).toBe(5);
      await Promise.all([busy, ...jobs]);
      expect(order).toEqual(["busy", "a1", "b1", "a2", "b2", "a3"]);
      expect(sch.stats().counts.rejected).toBe(1);
      await sch.dispose();
    });

    it("an abort frees the slot at once: the queued request runs while the aborted one would still be going", async () => {
      const sch = rt.scheduler({ slots: 1, queue: 2 });
      const ctl = new AbortController();
      const long = sch.generate({ s1: 1 }, PROMPTS[1], { maxTokens: 200, ignoreEos: true, signal: ctl.signal });
      const waiting = sch.generate({ s2: 1 }, PROMPTS[2], { maxTokens: 5 });
      const gone = sch.generate({}, PROMPTS[3], { maxTokens: 5 });
      gone.abort(); // aborted while queued: ends at once, nothing generated
      const g = await gone.result;
      expect(g.finishReason).toBe("abort");
      expect(g.generatedTokens).toBe(0);
      for await (const _ of long) {
        ctl.abort();
        break;
      }
      const [l, w] = await Promise.all([long.result, waiting.result]);
      expect(l.finishReason).toBe("abort");
      expect(l.generatedTokens).toBeLessThanOrEqual(3);
      expect(w.finishReason).toBe("length");
      expect(w.text).toBe(await lone(rt, { s2: 1 }, PROMPTS[2], 5));
      await sch.dispose();
    });

    it("unload waits for running requests with the adapter, fails waiting ones, and drops its states", async () => {
      const copy = path.join(scratchDir(), "tmp.gguf"); // its own file: unloading "tmp" frees it
      copyFileSync(S1, copy);
      await rt.adapters.load("tmp", copy);
      const sch = rt.scheduler({ slots: 1, queue: 4 });
      const running = sch.generate({ tmp: 1 }, PROMPTS[0], { maxTokens: 30, ignoreEos: true });
      const queued = sch.generate({ tmp: 1 }, PROMPTS[1], { maxTokens: 3 });
      await started(running);
      const unloading = rt.adapters.unload("tmp");
      await expect(queued.result).rejects.toThrow(AdapterNameError);
      await unloading;
      expect(running.done).toBe(true); // the unload waited for it
      const r = await running.result;
      expect(r.finishReason).toBe("length");
      expect(r.generatedTokens).toBe(30);
      expect(() => sch.generate({ tmp: 1 }, PROMPTS[0])).toThrow(AdapterNameError);
      expect((await sch.complete({ s1: 1 }, PROMPTS[0], { maxTokens: 8 })).text).toBe(await lone(rt, { s1: 1 }, PROMPTS[0], 8));
      await sch.dispose();
    });

    it("dispose stops running requests after their current token and fails waiting ones", async () => {
      const sch = rt.scheduler({ slots: 1, queue: 2 });
      const running = sch.generate({}, PROMPTS[0], { maxTokens: 200, ignoreEos: true });
      const queued = sch.generate({}, PROMPTS[1], { maxTokens: 3 });
      for await (const _ of running) {
        await sch.dispose();
        break;
      }
      const r = await running.result;
      expect(r.finishReason).toBe("abort");
      expect(r.generatedTokens).toBeLessThan(200);
      await expect(queued.result).rejects.toThrow(DisposedError);
      expect(() => sch.generate({}, "x")).toThrow(DisposedError);
    });
  });
}

describe("scheduler parking (native)", () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await openCpu();
    await rt.adapters.load("s1", S1);
    await rt.adapters.load("s2", S2);
  });
  afterAll(async () => rt?.dispose());

  it("parks a task's states when its slot is taken, restores them for the same set only, and bounds them by bytes", async () => {
    const sch = rt.scheduler({ slots: 1, parkMinTokens: 8 });
    const a = await sch.complete({ s1: 1 }, LONG, { maxTokens: 6 });
    await sch.complete({ s2: 1 }, PROMPTS[2], { maxTokens: 4 }); // takes the slot: s1's states are parked
    expect(sch.stats().counts.parked).toBe(1);
    const wrongSet = await sch.complete({ s2: 1 }, LONG, { maxTokens: 6 }); // parked s1 states are not for s2
    expect(wrongSet.reusedPromptTokens).toBeLessThanOrEqual(1); // at most the BOS state of its own earlier request
    expect(sch.stats().counts.restored).toBe(0);
    expect(wrongSet.text).toBe((await rt.session({ adapters: { s2: 1 } }).complete(LONG, { maxTokens: 6 })).text);
    const back = await sch.complete({ s1: 1 }, LONG, { maxTokens: 6 });
    expect(sch.stats().counts.restored).toBe(1);
    expect(back.reusedPromptTokens).toBe(back.promptTokens - 1);
    expect(back.text).toBe(a.text);
    await sch.dispose();

    const tiny = rt.scheduler({ slots: 1, parkMinTokens: 8, cacheBytes: 1 }); // nothing fits
    await tiny.complete({ s1: 1 }, LONG, { maxTokens: 2 });
    await tiny.complete({ s2: 1 }, LONG, { maxTokens: 2 });
    expect(tiny.stats().parkedBytes).toBe(0);
    expect(tiny.stats().counts.parked).toBe(0);
    await tiny.dispose();
  });
});
