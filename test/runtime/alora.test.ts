// The runtime's aLoRA path on native and wasm: llama.cpp's hand-built reference, the base prefix kept across switches (counted), plain sets never on it.
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fixture, scratchDir } from "../fixtures.js";
import { aloraGreedyReference, aloraReference, aloraSwitchReference, promptTokens, stagedLogProbs } from "../llama.js";
import { compareLogits } from "../engine/helpers.js";
import { ALORA_TEST_ADAPTER, writeDemoAdapter } from "../../src/tools/demo-adapters.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { chatLoop } from "../../src/cli/commands/chat.js";
import type { Runtime } from "../../src/runtime/index.js";
import { MODEL, S1, openCpu } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const ALORA = { filePath: fixture(`adapters/${ALORA_TEST_ADAPTER.file}`), scale: 1 };
const WITH_INVOCATION = "Once upon a time, there was a little girl named Lily. One day, she";
const TWICE = "One day, Lily went to the park. One day, she";
const WITHOUT = "Once upon a time, there was a little girl named Lily. She";
/** A conversation without the invocation, then the same with a task turn that invokes the adapter. */
const CONVERSATION = "Once upon a time, there was a little girl named Lily. She liked to play with her ball in the big green park.";
const TASK = `${CONVERSATION} One day, she`;
const GREEDY = { maxTokens: 12, temperature: 0 };

/** Largest |a - b| over the tokens the reference gives at least 1e-6 (log-probabilities, nats). */
function maxDiff(lp: Float64Array, ref: Map<number, number>): number {
  let m = 0;
  for (const [t, lb] of ref) if (lb >= Math.log(1e-6)) m = Math.max(m, Math.abs(lp[t] - lb));
  return m;
}

let second: string;
let otherInvocation: string;
beforeAll(() => {
  second = join(scratchDir(), "alora-second.gguf");
  writeDemoAdapter(MODEL, second, { ...ALORA_TEST_ADAPTER, file: "alora-second.gguf", seed: 4004, taskName: "alora-second" });
  otherInvocation = join(scratchDir(), "alora-other-invocation.gguf");
  writeDemoAdapter(MODEL, otherInvocation, { ...ALORA_TEST_ADAPTER, file: "alora-other-invocation.gguf", seed: 5005, taskName: "alora-other", invocationTokens: [403, 407] });
});

for (const backend of ["native", "wasm"] as const) {
  describe(`the aLoRA path on ${backend}`, () => {
    let rt: Runtime;
    beforeAll(async () => {
      rt = await openCpu({ backend });
      await rt.adapters.load("alora", ALORA.filePath);
      await rt.adapters.load("alora2", second);
      await rt.adapters.load("s1", S1);
    });
    afterAll(async () => rt?.dispose());

    /**
     * Our log-probabilities against llama.cpp's: bit for bit on native. On wasm, the engine's bound for stories260K F32
     * is 1e-4 normwise on a 5-token prompt against llama.cpp one token per batch; these prompts are 15 to 40 tokens
     * and llama.cpp evaluates them in one batch, where the plain evaluation of the same tokens already measures
     * 1.4e-4 (the mix below): 5e-4 here. The aLoRA reference is 0.8 to 2 nats from the plain and base ones, far outside it.
     */
    function expectReference(lp: Float64Array, ref: Map<number, number>, what: string) {
      if (backend === "native") expect(maxDiff(lp, ref), what).toBe(0);
      else expect(compareLogits(Float32Array.from(lp), ref).normwise, what).toBeLessThanOrEqual(5e-4);
    }

    it("equals llama.cpp's hand-built reference: base before the last invocation, the adapter from it on; inactive without it", async () => {
      const s = rt.session({ adapters: { alora: 1 } });
      expect(rt.adapters.get("alora")!.aloraInvocationTokens).toEqual(ALORA_TEST_ADAPTER.invocationTokens);
      for (const prompt of [WITH_INVOCATION, TWICE, WITHOUT]) {
        const ref = await aloraReference(MODEL, ALORA, prompt);
        expectReference(await s.nextLogProbs(prompt), ref.logProbs, prompt);
      }
      await s.dispose();
    });

    it("generates llama.cpp's greedy text, and the result says which path was taken", async () => {
      const s = rt.session({ adapters: { alora: 1 } });
      for (const prompt of [WITH_INVOCATION, TWICE, WITHOUT]) {
        const tokens = await promptTokens(MODEL, prompt);
        const ref = await aloraReference(MODEL, ALORA, tokens);
        const expected = await aloraGreedyReference(MODEL, ALORA, tokens, ref.start, GREEDY.maxTokens);
        const r = await s.complete(prompt, { ...GREEDY, reuseCache: false });
        expect(r.tokens, prompt).toEqual(expected.slice(0, r.tokens.length));
        expect(r.generatedTokens).toBeGreaterThan(3);
        expect(r.adapterPath).toBe(ref.start === undefined ? "alora-inactive" : "alora");
        expect(r.invocationStart).toBe(ref.start);
      }
      const base = await rt.session().complete(WITHOUT, GREEDY);
      expect(base.adapterPath).toBe("base");
      expect((await s.complete(WITHOUT, GREEDY)).text).toBe(base.text); // inactive is the base
      await s.dispose();
    });

    it("switches between the base and two aLoRA adapters keeping the base prefix: nothing before the invocation is evaluated again", async () => {
      const s = rt.session();
      const conv = await s.complete(CONVERSATION, { maxTokens: 1 });
      const task = rt.backend.tokenize(TASK, true);
      const start = (await aloraReference(MODEL, ALORA, task)).start!;
      expect(start).toBe(rt.backend.tokenize(CONVERSATION, true).length);
      expect(conv.adapterPath).toBe("base");
      const refs = await aloraSwitchReference(MODEL, task, start, [ALORA, { filePath: second, scale: 1 }]);
      for (const [i, name] of (["alora", "alora2", "alora"] as const).entries()) {
        await s.setAdapters({ [name]: 1 });
        const before = s.evaluatedTokens;
        const r = await s.complete(task, { maxTokens: 1 });
        expect(r.adapterPath).toBe("alora");
        // the base prefix is kept: only the invocation and what follows it are evaluated
        expect(r.reusedPromptTokens, name).toBe(start);
        expect(s.evaluatedTokens - before, name).toBe(task.length - start);
        // and the next token's distribution is llama.cpp's for that adapter
        expectReference(await s.nextLogProbs(task), refs[i === 1 ? 1 : 0], name);
        await s.complete(task, { maxTokens: 1 }); // the cache holds the task again for the next switch
      }
      expect(s.swaps.kept).toBe(3);
      // back to the base: the prefix before the invocation is still the base's
      await s.setAdapters({});
      const before = s.evaluatedTokens;
      const back = await s.complete(task, { maxTokens: 1 });
      expect(back.adapterPath).toBe("base");
      expect(back.reusedPromptTokens).toBe(start);
      expect(s.evaluatedTokens - before).toBe(task.length - start);
      expect(s.swaps.kept).toBe(4);
      await s.dispose();
    });

    it("a switch to an aLoRA adapter during a generation keeps the prefix before the invocation", async () => {
      const s = rt.session();
      const task = rt.backend.tokenize(TASK, true);
      const g = s.generate(TASK, { maxTokens: 10 });
      await g[Symbol.asyncIterator]().next(); // the base's first token is out
      const before = s.evaluatedTokens;
      await s.setAdapters({ alora: 1 });
      const r = await g.result;
      expect(r.adapterChanges).toBe(1);
      expect(r.adapterPath).toBe("alora");
      // after the change: the tokens from the invocation on, and the generated ones, again (not the conversation)
      expect(s.evaluatedTokens - before).toBeLessThanOrEqual(task.length - r.invocationStart! + r.generatedTokens);
      expect(s.swaps.kept).toBe(1);
      await s.dispose();
    });

    it("a plain adapter never takes the aLoRA path: it and any mix with it clear the cache and evaluate every token", async () => {
      const s = rt.session();
      await s.complete(TASK, { maxTokens: 1 });
      const task = rt.backend.tokenize(TASK, true);
      for (const set of [{ s1: 1 }, { s1: 1, alora: 1 }] as Record<string, number>[]) {
        await s.setAdapters(set);
        const before = s.evaluatedTokens;
        const r = await s.complete(TASK, { maxTokens: 1 });
        expect(r.adapterPath, JSON.stringify(set)).toBe("plain");
        expect(r.invocationStart).toBeUndefined();
        expect(r.reusedPromptTokens).toBe(0);
        expect(s.evaluatedTokens - before).toBe(task.length);
        await s.setAdapters({});
        await s.complete(TASK, { maxTokens: 1 });
      }
      // the mix is the plain evaluation of both adapters on every token, as llama.cpp computes it
      await s.setAdapters({ s1: 1, alora: 1 });
      const ref = await stagedLogProbs(MODEL, task, [{ end: task.length, adapters: [ALORA, { filePath: S1, scale: 1 }] }]); // the set's order (by name)
      expectReference(await s.nextLogProbs(TASK), ref, "s1 + alora");
      expect(s.swaps.kept).toBe(0);
      await s.dispose();
    });

    it("refuses aLoRA adapters of different invocations in one set, and the session keeps working", async () => {
      await rt.adapters.load("other", otherInvocation);
      try {
        const s = rt.session({ adapters: { alora: 1 } });
        expect(() => s.setAdapters({ alora: 1, other: 1 })).toThrow(InvalidArgumentError);
        expect(() => s.setAdapters({ alora: 1, other: 1 })).toThrow(/different invocation sequences/);
        expect((await s.complete(WITH_INVOCATION, GREEDY)).adapterPath).toBe("alora");
        await s.setAdapters({ alora: 1, alora2: 1 }); // one invocation shared: allowed
        expect((await s.complete(WITH_INVOCATION, GREEDY)).adapterPath).toBe("alora");
        await s.dispose();
      } finally {
        await rt.adapters.unload("other");
      }
    });
  });
}

describe("aLoRA without live swaps", () => {
  it("is refused with the reason (the cache must stay while adapters change)", async () => {
    const rt = await openCpu({ swap: "recreate" });
    try {
      await rt.adapters.load("alora", ALORA.filePath);
      expect(() => rt.session({ adapters: { alora: 1 } })).toThrow(/needs live adapter swaps/);
      expect((await rt.session().complete(WITHOUT, GREEDY)).adapterPath).toBe("base");
    } finally {
      await rt.dispose();
    }
  });
});

describe("lora-edge chat with an aLoRA adapter", () => {
  it("keeps the conversation across /adapter between the base and aLoRA sets, and clears it for a plain one", async () => {
    const rt = await openCpu();
    try {
      await rt.adapters.load("alora", ALORA.filePath);
      await rt.adapters.load("s1", S1);
      const session = rt.session();
      await session.ready();
      const input = new PassThrough();
      const output = new PassThrough();
      let out = "";
      output.on("data", (d) => (out += d.toString()));
      const done = chatLoop(rt, session, { maxTokens: 4, temperature: 0, seed: 0 }, input, output);
      input.end([CONVERSATION, "/adapter alora", "One day, she", "/adapter s1", "/quit"].join("\n") + "\n");
      await done;
      expect(out).toContain('adapters: {"alora":1}');
      expect(out).toMatch(/conversation kept: aLoRA adapters act from their invocation on/);
      expect(out).toMatch(/adapters: \{"s1":1\} \([\d.]+ ms; context cleared\)/);
      expect(session.swaps.kept).toBe(1);
    } finally {
      await rt.dispose();
    }
  });
});
