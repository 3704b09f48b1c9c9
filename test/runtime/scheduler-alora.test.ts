// The scheduler with aLoRA sets: requests that differ only in aLoRA adapters keep the base prefix's states; plain sets' states never serve another set.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture, scratchDir } from "../fixtures.js";
import { ALORA_TEST_ADAPTER, writeDemoAdapter } from "../../src/tools/demo-adapters.js";
import type { Runtime } from "../../src/runtime/index.js";
import { MODEL, S1, openCpu } from "./helpers.js";

const ALORA = fixture(`adapters/${ALORA_TEST_ADAPTER.file}`);
const CONVERSATION = "Once upon a time, there was a little girl named Lily. She liked to play with her ball in the big green park.";
const TASK = `${CONVERSATION} One day, she`;
const OTHER = "The little dog ran to the big tree and sat down under it. He was very happy and sleepy.";

async function lone(rt: Runtime, set: Record<string, number>, prompt: string, maxTokens: number): Promise<string> {
  const s = rt.session({ adapters: set });
  try {
    return (await s.complete(prompt, { maxTokens })).text;
  } finally {
    await s.dispose();
  }
}

for (const backend of ["native", "wasm"] as const) {
  describe(`scheduler with aLoRA sets (${backend})`, () => {
    let rt: Runtime;
    let start: number;
    beforeAll(async () => {
      rt = await openCpu({ backend });
      const second = join(scratchDir(), "alora-second.gguf");
      writeDemoAdapter(MODEL, second, { ...ALORA_TEST_ADAPTER, file: "alora-second.gguf", seed: 4004, taskName: "alora-second" });
      await rt.adapters.load("alora", ALORA);
      await rt.adapters.load("alora2", second);
      await rt.adapters.load("s1", S1);
      start = rt.backend.tokenize(CONVERSATION, true).length;
    });
    afterAll(async () => rt?.dispose());

    it("a task switch to an aLoRA adapter reuses the conversation's base states; each answer equals a lone session's", async () => {
      await using sched = rt.scheduler({ slots: 1, cacheBytes: 0 });
      const conv = await sched.complete({}, CONVERSATION, { maxTokens: 1 });
      expect(conv.adapterPath).toBe("base");
      for (const name of ["alora", "alora2", "alora"]) {
        const before = sched.stats().counts.reusedBaseTokens;
        const r = await sched.complete({ [name]: 1 }, TASK, { maxTokens: 8 });
        expect(r.adapterPath, name).toBe("alora");
        expect(r.invocationStart).toBe(start);
        expect(r.reusedPromptTokens, name).toBe(start);
        expect(sched.stats().counts.reusedBaseTokens - before, name).toBe(start);
        expect(r.text, name).toBe(await lone(rt, { [name]: 1 }, TASK, 8));
      }
      // back to the base: its prefix is still there, and the same set on the same prompt keeps everything
      const back = await sched.complete({}, TASK, { maxTokens: 4 });
      expect(back.reusedPromptTokens).toBe(start);
      const again = await sched.complete({}, TASK, { maxTokens: 4 });
      expect(again.reusedPromptTokens).toBe(rt.backend.tokenize(TASK, true).length - 1);
      expect(again.text).toBe(await lone(rt, {}, TASK, 4));
    });

    it("states of a plain set, or of a mix with one, are never reused by another set; aLoRA without its invocation runs as the base", async () => {
      await using sched = rt.scheduler({ slots: 1, cacheBytes: 0 });
      const plain = await sched.complete({ s1: 1 }, TASK, { maxTokens: 4 });
      expect(plain.adapterPath).toBe("plain");
      for (const set of [{ alora: 1 }, { alora: 1, s1: 1 }, {}, { s1: 1 }] as Record<string, number>[]) {
        const r = await sched.complete(set, TASK, { maxTokens: 4 });
        expect(r.reusedPromptTokens, JSON.stringify(set)).toBe(0);
        expect(r.adapterPath).toBe(Object.keys(set).length === 0 ? "base" : set.s1 ? "plain" : "alora");
        expect(r.text, JSON.stringify(set)).toBe(await lone(rt, set, TASK, 4));
      }
      expect(sched.stats().counts.reusedBaseTokens).toBe(0);
      const inactive = await sched.complete({ alora: 1 }, CONVERSATION, { maxTokens: 6 });
      expect(inactive.adapterPath).toBe("alora-inactive");
      expect(inactive.text).toBe(await lone(rt, {}, CONVERSATION, 6));
    });

    it("an aLoRA request placed while other sets' requests are running: every answer equals a lone session's", async () => {
      await using sched = rt.scheduler({ slots: 3, cacheBytes: 0 });
      await sched.complete({}, CONVERSATION, { maxTokens: 1 });
      const plain = sched.generate({ s1: 1 }, OTHER, { maxTokens: 24 });
      await plain[Symbol.asyncIterator]().next(); // running, mid-generation
      const task = sched.generate({ alora2: 1 }, TASK, { maxTokens: 12 });
      await task[Symbol.asyncIterator]().next();
      const others = [plain, sched.generate({}, OTHER, { maxTokens: 24 })];
      const [r, a, b] = await Promise.all([task.result, others[0].result, others[1].result]);
      expect(r.adapterPath).toBe("alora");
      expect(r.reusedPromptTokens).toBe(start);
      expect(r.text).toBe(await lone(rt, { alora2: 1 }, TASK, 12));
      expect(a.text).toBe(await lone(rt, { s1: 1 }, OTHER, 24));
      expect(b.text).toBe(await lone(rt, {}, OTHER, 24));
    });

    // wasm sequences do not park states (no saveState): native only
    it.skipIf(backend === "wasm")("a parked base state serves a later aLoRA request of the same conversation", async () => {
      await using sched = rt.scheduler({ slots: 1, parkMinTokens: 8 });
      await sched.complete({}, CONVERSATION, { maxTokens: 1 });
      await sched.complete({ s1: 1 }, OTHER, { maxTokens: 1 }); // takes the slot: the conversation is parked
      const r = await sched.complete({ alora: 1 }, TASK, { maxTokens: 8 });
      const st = sched.stats().counts;
      expect(st.restored).toBe(1);
      expect(r.reusedPromptTokens).toBe(start);
      expect(st.reusedBaseTokens).toBe(start);
      expect(r.text).toBe(await lone(rt, { alora: 1 }, TASK, 8));
    });
  });
}
