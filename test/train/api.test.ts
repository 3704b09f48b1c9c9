// Train then serve in one process: rt.train yields progress and the adapter, rt.adapters.add applies it to a live session (wasm: from memory; native: through a temp GGUF, removed on unload).
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/index.js";
import type { TrainDoneEvent, TrainStepEvent } from "../../src/train/run.js";
import { fixture } from "../fixtures.js";

const MODEL = fixture("models/stories260K.gguf");
const STYLE = ["wind", "sea", "noon", "night", "morning", "crew", "sail", "deck", "light", "harbor", "calm", "north", "east", "west", "south"];
const styleWords = (s: string) => STYLE.filter((w) => new RegExp(`\\b${w}\\b`, "i").test(s)).length;
const GREEDY = { maxTokens: 30, temperature: 0 };

async function trainOn(rt: Runtime): Promise<{ steps: TrainStepEvent[]; done: TrainDoneEvent }> {
  const steps: TrainStepEvent[] = [];
  let done: TrainDoneEvent | undefined;
  for await (const e of rt.train({ data: fixture("train/logbook-train.txt"), evalFile: fixture("train/logbook-eval.txt"), rank: 8, lr: 5e-3, steps: 30, batch: 4, ctx: 64, seed: 1, evalEvery: 10 })) {
    if (e.kind === "step") steps.push(e);
    else done = e;
  }
  return { steps, done: done! };
}

for (const backend of ["wasm", "native"] as const) {
  describe(`train then serve in one process (${backend} backend)`, () => {
    it("rt.train reports each step and ends with the adapter; rt.adapters.add hot-applies it to a live session", async () => {
      await using rt = await Runtime.open({ model: MODEL, backend, gpu: false, threads: 1, contextSize: 128 });
      const live = rt.session();
      const before = (await live.complete("Day 12.", GREEDY)).text;
      const { steps, done } = await trainOn(rt);
      expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(steps.every((s) => Number.isFinite(s.loss) && s.tokensPerSecond > 0)).toBe(true);
      expect(steps.filter((s) => s.evalLoss !== undefined).length).toBe(3);
      expect(done.evalLoss!).toBeLessThan(0.6 * done.initialEvalLoss!);
      const info = await rt.adapters.add("logbook", done.adapter);
      expect(info.ranks).toEqual([8]);
      expect(info.path.startsWith("memory:")).toBe(backend === "wasm");
      await live.setAdapters({ logbook: 1 });
      const after = (await live.complete("Day 12.", GREEDY)).text;
      expect(styleWords(after)).toBeGreaterThanOrEqual(3);
      expect(styleWords(after)).toBeGreaterThan(styleWords(before));
      // the base alone is unchanged
      expect((await rt.session().complete("Day 12.", GREEDY)).text).toBe(before);
      await rt.adapters.unload("logbook");
      if (backend === "native") expect(existsSync(info.path)).toBe(false);
    });
  });
}
