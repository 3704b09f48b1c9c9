// Mixed batches: several sequences with different adapter sets decoded in shared passes, each bit for bit as decoded alone.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EngineContext, EngineModel, type AdapterPrecision, type EngineAdapter } from "../../src/backends/wasm/engine/index.js";
import { WasmBackend } from "../../src/backends/wasm.js";
import type { BackendContext, SamplingOptions } from "../../src/backends/backend.js";
import { createPool, KernelPool } from "../../src/core/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";
import { sameBits } from "../core/helpers.js";
import { engineFor } from "./helpers.js";

let pool: KernelPool;
beforeAll(async () => {
  // threshold 0: every product and the attention split over the threads
  pool = await createPool({ threads: 3, maxBytes: 256 << 20, minParallelBytes: 0 });
});
afterAll(() => pool?.dispose());

const A = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const B = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");

type Set = { adapter: EngineAdapter; scale: number }[];

function loadAdapter(model: EngineModel, file: string, precision: AdapterPrecision): EngineAdapter {
  const f = openGguf(file);
  try {
    return model.loadAdapter(f, { precision });
  } finally {
    f.close();
  }
}

/** The four sets of the mixes: base, A, B and 0.5 A + 0.5 B. */
function sets(model: EngineModel, precision: AdapterPrecision): Set[] {
  const a = loadAdapter(model, A, precision), b = loadAdapter(model, B, precision);
  return [[], [{ adapter: a, scale: 1 }], [{ adapter: b, scale: 1 }], [{ adapter: a, scale: 0.5 }, { adapter: b, scale: 0.5 }]];
}

interface Plan {
  set: Set;
  prompt: number[];
  /** Step at which the sequence joins (its prompt goes into that step's pass) and how many tokens it then decodes. */
  join: number;
  steps: number;
}

function promptOf(n: number, vocab: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919 + seed * 104729) % (vocab - 3))));
}

/** Greedy decoding of one sequence alone: the logits after its prompt and after each decoded token. */
function alone(model: EngineModel, p: Plan): Float32Array[] {
  const ctx = new EngineContext(model, 96, p.set);
  try {
    const out = [ctx.evaluate(p.prompt)];
    for (let s = 1; s < p.steps; s++) out.push(ctx.evaluate([model.argmax()]));
    return out;
  } finally {
    ctx.dispose();
  }
}

/** All plans decoded together: each step one shared evaluation of every sequence active at that step. */
function together(model: EngineModel, plans: Plan[]): Float32Array[][] {
  const ctxs = plans.map((p) => new EngineContext(model, 96, p.set));
  const got: Float32Array[][] = plans.map(() => []);
  const next = plans.map(() => -1);
  try {
    const last = Math.max(...plans.map((p) => p.join + p.steps));
    for (let step = 0; step < last; step++) {
      const active = plans.map((p, i) => i).filter((i) => step >= plans[i].join && step < plans[i].join + plans[i].steps);
      const items = active.map((i) => ({ context: ctxs[i], tokens: step === plans[i].join ? plans[i].prompt : [next[i]] }));
      EngineContext.evaluateTogether(items, (k, row) => {
        const i = active[k];
        got[i].push(model.logits(row));
        next[i] = model.argmax(row);
      });
      // a sequence that leaves frees its context; the others go on
      for (const i of active) if (step === plans[i].join + plans[i].steps - 1) ctxs[i].dispose();
    }
    return got;
  } finally {
    for (const c of ctxs) c.dispose();
  }
}

/** n sequences cycling through the sets, joining and leaving at different steps, prompts of 1 to 9 tokens. */
function plansFor(model: EngineModel, all: Set[], n: number, seed: number): Plan[] {
  return Array.from({ length: n }, (_, i) => ({
    set: all[(i + seed) % all.length],
    prompt: promptOf(1 + ((i * 5 + seed) % 9), model.config.nVocab, i + 10 * seed),
    join: (i * 3 + seed) % 4,
    steps: 2 + ((i * 7 + seed) % 5),
  }));
}

describe("mixed batches: sequences with different adapter sets in one pass", () => {
  for (const name of ["stories260K-Q4_0.gguf", "stories260K.gguf", "stories260K-Q8_0.gguf"]) {
    test(`${name}: 1 to 8 sequences over base, A, B and 0.5 A + 0.5 B, joining and leaving, equal each sequence decoded alone`, async () => {
      const file = fixture(`models/${name}`);
      const f = openGguf(file);
      const models = [await engineFor(file), new EngineModel(pool.core, f)];
      f.close();
      const precisions: AdapterPrecision[] = name === "stories260K.gguf" ? ["f32"] : ["f32", "q8"];
      for (const model of models) {
        for (const precision of precisions) {
          const all = sets(model, precision);
          for (let n = 1; n <= 8; n++) {
            const plans = plansFor(model, all, n, n);
            const got = together(model, plans);
            plans.forEach((p, i) => {
              const want = alone(model, p);
              const label = `${name} ${model === models[0] ? "1 thread" : "3 threads"} ${precision} n ${n} sequence ${i}`;
              expect(got[i].length, label).toBe(want.length);
              want.forEach((w, s) => expect(sameBits(got[i][s], w), `${label} step ${s}`).toBe(true));
            });
          }
          for (const set of all) for (const { adapter } of set) if (!adapter.freed) adapter.free();
        }
      }
    });
  }

  test("the mixes differ: the adapters change the logits, so the comparison above can fail", async () => {
    const model = await engineFor(fixture("models/stories260K-Q4_0.gguf"));
    const all = sets(model, "f32");
    const logits = all.map((set) => alone(model, { set, prompt: [1, 400, 300], join: 0, steps: 1 })[0]);
    for (let i = 0; i < logits.length; i++) for (let j = i + 1; j < logits.length; j++) expect(sameBits(logits[i], logits[j]), `${i} ${j}`).toBe(false);
  });

  test("a step is checked before anything runs", async () => {
    const model = await engineFor(fixture("models/stories260K.gguf"));
    const a = new EngineContext(model, 4), b = new EngineContext(model, 8);
    expect(() => EngineContext.evaluateTogether([{ context: a, tokens: [1] }, { context: a, tokens: [2] }], () => {})).toThrow(/twice/);
    expect(() => EngineContext.evaluateTogether([{ context: b, tokens: [1, 2] }, { context: a, tokens: [1, 2, 3, 4, 5] }], () => {})).toThrow(/cannot take/);
    expect(b.cachedTokens).toEqual([]);
    a.dispose();
    expect(() => EngineContext.evaluateTogether([{ context: a, tokens: [1] }], () => {})).toThrow(/disposed/);
    b.dispose();
  });
});

describe("WasmBackend.decodeBatch", () => {
  test("one call per step for all active contexts gives each context the tokens sample() gives it alone (greedy and seeded)", async () => {
    const b = await WasmBackend.open({ modelPath: fixture("models/stories260K-Q4_0.gguf"), threads: 1 });
    try {
      const sa = await b.loadAdapter(A), sb = await b.loadAdapter(B);
      const setups = [
        { adapters: [], sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 } },
        { adapters: [{ adapter: sa, scale: 1 }], sampling: { temperature: 0.9, topK: 40, topP: 0.95, seed: 7 } },
        { adapters: [{ adapter: sb, scale: 1 }], sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 } },
        { adapters: [{ adapter: sa, scale: 0.5 }, { adapter: sb, scale: 0.5 }], sampling: { temperature: 1.2, topK: 0, topP: 1, seed: 11 } },
      ];
      const prompts = [[1, 403, 261], [1, 307], [1, 365, 285, 300, 412], [1, 280, 290, 301]];
      const N = 12;
      // alone: each context's own sample() stream
      const want: number[][] = [];
      for (const [i, s] of setups.entries()) {
        const ctx = await b.createContext({ contextSize: 64, adapters: s.adapters, live: true });
        const toks: number[] = [];
        for await (const t of ctx.sample(prompts[i], s.sampling as SamplingOptions)) if (toks.push(t) >= N) break;
        want.push(toks);
        await ctx.dispose();
      }
      // together: one decodeBatch per step
      const ctxs: BackendContext[] = [];
      for (const s of setups) ctxs.push(await b.createContext({ contextSize: 64, adapters: s.adapters, live: true }));
      const got: number[][] = setups.map(() => []);
      for (let step = 0; step < N; step++) {
        const toks = await b.decodeBatch!(ctxs.map((context, i) => ({
          context, tokens: step === 0 ? prompts[i] : [got[i][step - 1]], sampling: setups[i].sampling, restart: step === 0,
        })));
        toks.forEach((t, i) => got[i].push(t));
      }
      expect(got).toEqual(want);
      // greedy and sampled streams differ from each other: the comparison can fail
      expect(new Set(got.map((g) => g.join(","))).size).toBe(4);
      for (const c of ctxs) await c.dispose();
      await expect(b.decodeBatch!([{ context: ctxs[0], tokens: [1], sampling: setups[0].sampling }])).rejects.toThrow(/not open/);
    } finally {
      await b.dispose();
    }
  });
});
