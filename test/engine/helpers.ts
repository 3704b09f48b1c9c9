// Engine test helpers: an engine over a GGUF file, llama.cpp references through node-llama-cpp, and the normwise logit comparison.
import { availableParallelism } from "node:os";
import { openGguf } from "../../src/gguf/reader.js";
import { loadCore, type Core } from "../../src/core/index.js";
import { EngineModel, type WeightOptions } from "../../src/backends/wasm/engine/index.js";
import type { Token } from "node-llama-cpp";
import { cpuLlama } from "../llama.js";

let corePromise: Promise<Core> | undefined;
/** One single-threaded core per test file (models are small). */
export function sharedCore(): Promise<Core> {
  corePromise ??= loadCore();
  return corePromise;
}

export async function engineFor(modelPath: string, opts: WeightOptions = {}): Promise<EngineModel> {
  const f = openGguf(modelPath);
  try {
    return new EngineModel(await sharedCore(), f, undefined, opts);
  } finally {
    f.close();
  }
}

/** llama.cpp's next-token log-probabilities (every token it reports) and its greedy continuation, in one context. */
export async function llamaReference(
  modelPath: string,
  tokens: number[],
  opts: { adapters?: { filePath: string; scale: number }[]; greedy?: number; batchSize?: number; flashAttention?: boolean } = {},
): Promise<{ logProbs: Map<number, number>; greedy: number[] }> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath });
  try {
    const adapters = opts.adapters ?? [];
    const context = await model.createContext({ contextSize: 256, batchSize: opts.batchSize, flashAttention: opts.flashAttention, threads: availableParallelism(), lora: adapters.length ? { adapters } : undefined });
    try {
      const seq = context.getSequence();
      let logProbs = new Map<number, number>();
      for await (const out of seq.evaluateWithMetadata(tokens as Token[], { probabilities: true }, { temperature: 0 })) {
        logProbs = new Map([...(out.probabilities as Map<number, number>)].filter(([, p]) => p > 0).map(([t, p]) => [t, Math.log(p)]));
        break;
      }
      const greedy: number[] = [];
      if (opts.greedy) {
        await seq.clearHistory();
        for await (const t of seq.evaluate(tokens as Token[], { temperature: 0 })) {
          greedy.push(t as number);
          if (greedy.length >= opts.greedy) break;
        }
      }
      return { logProbs, greedy };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * Our logits against llama.cpp's log-probabilities on the tokens it reports: both are centred (logits are defined
 * up to a constant per position), then normwise = max|a-b| / max|b|. Also the largest log-probability difference.
 */
export function compareLogits(logits: Float32Array, ref: Map<number, number>): { normwise: number; maxLogProbDiff: number; n: number } {
  const ids = [...ref.keys()];
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - mx);
  const lse = mx + Math.log(z);
  const a = ids.map((i) => logits[i]);
  const b = ids.map((i) => ref.get(i)!);
  const ma = a.reduce((s, v) => s + v, 0) / a.length;
  const mb = b.reduce((s, v) => s + v, 0) / b.length;
  let num = 0, den = 0, lp = 0;
  for (let j = 0; j < ids.length; j++) {
    num = Math.max(num, Math.abs(a[j] - ma - (b[j] - mb)));
    den = Math.max(den, Math.abs(b[j] - mb));
    lp = Math.max(lp, Math.abs(a[j] - lse - b[j]));
  }
  return { normwise: num / den, maxLogProbDiff: lp, n: ids.length };
}

/** Top-n (token, logit) pairs, largest first. */
export function topN(logits: Float32Array, n: number): { token: number; logit: number }[] {
  return [...logits].map((logit, token) => ({ token, logit })).sort((x, y) => y.logit - x.logit).slice(0, n);
}
