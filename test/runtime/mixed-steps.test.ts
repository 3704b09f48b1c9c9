// Mixed-set steps: one decodeBatch call per step, prompts first then the last token, and a failing step failing alone.
import { describe, expect, it } from "vitest";
import type { Backend, BackendBatchContext, BackendContext, BackendSequence, DecodeStep } from "../../src/backends/backend.js";
import { MixedSteps } from "../../src/runtime/mixed-steps.js";

/** A sequence whose context records what it evaluated; `bad` ones make any call holding them fail before it runs. */
function sequence(bad = false): BackendSequence & { evaluated: number[][] } {
  const evaluated: number[][] = [];
  const context = { bad, evaluated } as unknown as BackendContext;
  return {
    evaluated,
    context,
    get cachedTokens() {
      return evaluated.flat();
    },
  } as unknown as BackendSequence & { evaluated: number[][] };
}

function backend(calls: DecodeStep[][]): Backend {
  return {
    async decodeBatch(steps: readonly DecodeStep[]) {
      calls.push([...steps]);
      if (steps.some((s) => (s.context as unknown as { bad: boolean }).bad)) throw new Error("bad step");
      return steps.map((s) => {
        (s.context as unknown as { evaluated: number[][] }).evaluated.push([...s.tokens]);
        return 100 + s.tokens[s.tokens.length - 1];
      });
    },
  } as unknown as Backend;
}

const mixedCtx = { mixedBatch: true } as BackendBatchContext;
const sampling = { temperature: 0, topK: 40, topP: 0.95, seed: 3 };

describe("MixedSteps", () => {
  it("is only made for batch contexts that take mixed sets on backends with decodeBatch", () => {
    expect(MixedSteps.for(backend([]), { mixedBatch: false } as BackendBatchContext)).toBeNull();
    expect(MixedSteps.for({} as Backend, mixedCtx)).toBeNull();
  });

  it("steps every sequence in one call: the prompt with a restart first, then the token the last step returned", async () => {
    const calls: DecodeStep[][] = [];
    const m = MixedSteps.for(backend(calls), mixedCtx)!;
    const [a, b] = [sequence(), sequence()];
    m.begin(a, [1, 2, 3], sampling);
    m.begin(b, [1, 5], sampling);
    expect(() => m.begin(a, [1], sampling)).toThrow(/already running/);
    expect((await m.advance([a, b])).map((r) => r.status === "fulfilled" && r.value)).toEqual([103, 105]);
    expect((await m.advance([a, b])).map((r) => r.status === "fulfilled" && r.value)).toEqual([203, 205]);
    expect(calls.map((c) => c.map((s) => [s.tokens, s.restart]))).toEqual([
      [[[1, 2, 3], true], [[1, 5], true]],
      [[[103], false], [[105], false]],
    ]);
    expect([m.calls, m.rows]).toEqual([2, 4]);
    m.end(a);
    await expect(m.advance([a])).rejects.toThrow(/no generation/);
  });

  it("when a call fails before anything ran, steps each sequence alone so only the faulty one fails", async () => {
    const calls: DecodeStep[][] = [];
    const m = MixedSteps.for(backend(calls), mixedCtx)!;
    const [a, bad, c] = [sequence(), sequence(true), sequence()];
    for (const s of [a, bad, c]) m.begin(s, [1, 7], sampling);
    const got = await m.advance([a, bad, c]);
    expect(got.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(calls.map((x) => x.length)).toEqual([3, 1, 1, 1]);
    expect([a.evaluated, c.evaluated]).toEqual([[[1, 7]], [[1, 7]]]); // evaluated once each
  });
});
