// Mixed-adapter load for the engine benchmark: sequences on different adapters decoded together in shared passes, one at a time, and by llama.cpp one at a time.
import type { Llama } from "node-llama-cpp";
import type { Core } from "../src/core/core.js";
import { EngineContext, type EngineAdapter, type EngineModel } from "../src/backends/wasm/engine/index.js";
import { kernelProfile } from "./kernel-profile.js";

/** Aggregate decode tokens/s of one mixed load (all sequences' tokens over the time of all of them). */
export interface MixedFigures {
  together: number;
  oneAtATime: number;
}

/** Prompt of sequence k: distinct tokens, so no two sequences share states. */
export function mixedPrompt(k: number, n: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919 + (k + 1) * 104729) % (vocab - 3))));
}

/**
 * Sequence k on adapters[k] (scale 1): each prompt is evaluated, then `decode` greedy tokens are decoded per
 * sequence, either all sequences in one forward pass per step or each sequence alone. Only decoding is timed.
 */
export function wasmMixed(model: EngineModel, adapters: readonly EngineAdapter[], promptN: number, decode: number): MixedFigures {
  const seqs = openMixed(model, adapters, promptN, decode);
  const together = (adapters.length * decode) / (decodeTogether(model, seqs, decode) / 1000);
  const alone = openMixed(model, adapters, promptN, decode);
  const oneAtATime = (adapters.length * decode) / (decodeAlone(model, alone, decode) / 1000);
  return { together, oneAtATime };
}

/** Where a decoding step's time goes: milliseconds per kernel (wasm export) and outside them, per step or per token. */
export interface StepProfile {
  /** Wall time of one step, profiled (the per-call timing adds a little to every kernel call). */
  totalMs: number;
  /** Kernel name (or "outside kernels (JavaScript)") to milliseconds, largest first. */
  ms: Record<string, number>;
}

/**
 * The mixed load's decoding profiled kernel by kernel (core.startProfile): one step of all sequences together,
 * and one token of a sequence decoded alone, each averaged over `decode` steps.
 */
export function wasmMixedProfile(core: Core, model: EngineModel, adapters: readonly EngineAdapter[], promptN: number, decode: number): { together: StepProfile; oneToken: StepProfile } {
  const per3 = (v: number, per: number) => Math.round((1000 * v) / per) / 1000;
  const profiled = (run: () => number, per: number): StepProfile => {
    const { totalMs, ms } = kernelProfile(core, run);
    return { totalMs: per3(totalMs, per), ms: Object.fromEntries(ms.map(([k, v]) => [k, per3(v, per)])) };
  };
  const seqs = openMixed(model, adapters, promptN, decode);
  const together = profiled(() => decodeTogether(model, seqs, decode), decode);
  const alone = openMixed(model, adapters, promptN, decode);
  const oneToken = profiled(() => decodeAlone(model, alone, decode), adapters.length * decode);
  return { together, oneToken };
}

interface MixedSequence {
  ctx: EngineContext;
  next: number;
}

/** A context per adapter with its prompt evaluated and its first token chosen. */
function openMixed(model: EngineModel, adapters: readonly EngineAdapter[], promptN: number, decode: number): MixedSequence[] {
  return adapters.map((adapter, k) => {
    const ctx = new EngineContext(model, promptN + decode + 8, [{ adapter, scale: 1 }]);
    ctx.evaluate(mixedPrompt(k, promptN, model.config.nVocab));
    return { ctx, next: model.argmax() };
  });
}

/** `decode` steps of all sequences in one forward pass each; milliseconds. Disposes the contexts. */
function decodeTogether(model: EngineModel, seqs: MixedSequence[], decode: number): number {
  const t0 = performance.now();
  try {
    for (let s = 0; s < decode; s++) {
      EngineContext.evaluateTogether(
        seqs.map((q) => ({ context: q.ctx, tokens: [q.next] })),
        (i, row) => (seqs[i].next = model.argmax(row)),
      );
    }
    return performance.now() - t0;
  } finally {
    for (const q of seqs) q.ctx.dispose();
  }
}

/** `decode` tokens of each sequence alone, one sequence after the other; milliseconds. Disposes the contexts. */
function decodeAlone(model: EngineModel, seqs: MixedSequence[], decode: number): number {
  const t0 = performance.now();
  try {
    for (const q of seqs) {
      for (let s = 0; s < decode; s++) {
        q.ctx.evaluate([q.next]);
        q.next = model.argmax();
      }
    }
    return performance.now() - t0;
  } finally {
    for (const q of seqs) q.ctx.dispose();
  }
}

/**
 * llama.cpp serving the same sequences one at a time: one context per sequence with its adapter (how
 * node-llama-cpp applies adapters), each prompt evaluated, then each sequence's `decode` tokens in turn.
 */
export async function nativeMixed(llama: Llama, modelPath: string, adapterPaths: readonly string[], threads: number, promptN: number, decode: number, vocab: number): Promise<number> {
  const model = await llama.loadModel({ modelPath });
  try {
    const seqs = [];
    for (let k = 0; k < adapterPaths.length; k++) {
      const ctx = await model.createContext({
        contextSize: Math.max(256, promptN + decode + 8), threads, batchSize: Math.max(promptN, 1),
        lora: { adapters: [{ filePath: adapterPaths[k], scale: 1 }] },
      });
      const prompt = mixedPrompt(k, promptN, vocab);
      const seq = ctx.getSequence();
      await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1) as never);
      seqs.push({ ctx, seq, last: prompt[prompt.length - 1] });
    }
    try {
      const t0 = performance.now();
      for (const q of seqs) {
        let n = 0;
        // the first token comes from evaluating the prompt's last one, each later one from evaluating the one before it
        for await (const _t of q.seq.evaluate([q.last] as never, { temperature: 0 })) {
          if (++n >= decode) break;
        }
      }
      return (adapterPaths.length * decode) / ((performance.now() - t0) / 1000);
    } finally {
      for (const q of seqs) await q.ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}
