// Test helper: llama.cpp (through node-llama-cpp, CPU) next-token log-probabilities for a model and adapters, and the aLoRA reference.
import { getLlama, Llama, type LlamaContextSequence, type Token } from "node-llama-cpp";
import { availableParallelism } from "node:os";
import { openGguf } from "../src/gguf/reader.js";
import { adapterMeta } from "../src/gguf/metadata.js";
import { lastInvocationStart } from "../src/runtime/invocation.js";

let llamaPromise: Promise<Llama> | undefined;

/** One CPU llama.cpp instance per test file, never compiled or downloaded. */
export function cpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", skipDownload: true, maxThreads: availableParallelism(), logLevel: "error" as never });
  return llamaPromise;
}

/**
 * Log-probabilities of the next token after `prompt` (with BOS), greedy, as a map token -> log p.
 * llama.cpp hands out probabilities, not logits: log p differs from the logit by one constant per position.
 */
export async function nextTokenLogProbs(modelPath: string, adapters: { filePath: string; scale: number }[] = [], prompt = "Once upon a time"): Promise<Map<number, number>> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({ contextSize: 128, threads: availableParallelism(), lora: adapters.length ? { adapters } : undefined });
    try {
      const seq = context.getSequence();
      // tokenize() adds no BOS; llama.cpp's own prompt handling (and the reference logits) start with it.
      const bos = model.tokens.bos;
      const tokens = [...(bos === null ? [] : [bos]), ...model.tokenize(prompt)];
      for await (const out of seq.evaluateWithMetadata(tokens, { probabilities: true }, { temperature: 0 })) {
        const probs = out.probabilities as Map<number, number>;
        return new Map([...probs].map(([t, p]) => [t, Math.log(p)]));
      }
      throw new Error("llama.cpp produced no output");
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** Reference top-5 logits from the fixtures' text file, by section title. */
export function parseReferenceLogits(text: string): Map<string, { token: number; logit: number }[]> {
  const out = new Map<string, { token: number; logit: number }[]>();
  let title = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("== ")) title = line.slice(3).trim();
    const m = /^top5 after prompt: (.*)$/.exec(line);
    if (m) out.set(title, m[1].trim().split(/\s+/).map((p) => { const [t, l] = p.split(":"); return { token: Number(t), logit: Number(l) }; }));
  }
  return out;
}

/** An adapter as node-llama-cpp takes it. */
export interface LlamaLora { filePath: string; scale: number }

/** One stage of a staged evaluation: the context's adapters while tokens up to index `end` (exclusive) are evaluated. */
export interface EvalStage { end: number; adapters: LlamaLora[] }

/**
 * llama.cpp's next-token log-probabilities after `tokens`, evaluated in stages on one sequence of one context
 * (one thread, 256 tokens): each stage sets the context's adapters (node-llama-cpp's internal `_setLoras`,
 * llama_set_adapters_lora) and evaluates its tokens without clearing what earlier stages put in the KV cache.
 * The last stage must end at tokens.length.
 */
export async function stagedLogProbs(modelPath: string, tokens: readonly number[], stages: readonly EvalStage[]): Promise<Map<number, number>> {
  if (stages.length === 0 || stages[stages.length - 1].end !== tokens.length) throw new Error("the last stage must end at tokens.length");
  return withAdapterContext(modelPath, async (setLoras, seq) => {
    let from = 0;
    for (const [i, stage] of stages.entries()) {
      if (stage.end < from) throw new Error(`stage ${i} ends at ${stage.end}, before its start ${from}`);
      await setLoras(stage.adapters);
      const part = tokens.slice(from, stage.end) as Token[];
      from = stage.end;
      if (i < stages.length - 1) {
        if (part.length) await seq.evaluateWithoutGeneratingNewTokens(part);
        continue;
      }
      if (part.length === 0) throw new Error("the last stage has no tokens to evaluate");
      for await (const out of seq.evaluateWithMetadata(part, { probabilities: true }, { temperature: 0 })) {
        const probs = out.probabilities as Map<number, number>;
        if (seq.contextTokens.length !== tokens.length) throw new Error(`the sequence holds ${seq.contextTokens.length} tokens, expected ${tokens.length}`);
        return new Map([...probs].map(([t, p]) => [t, Math.log(p)]));
      }
    }
    throw new Error("llama.cpp produced no output");
  });
}

/** A prompt's token ids as llama.cpp evaluates it: BOS, then the text's tokens. */
export async function promptTokens(modelPath: string, prompt: string): Promise<number[]> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath, vocabOnly: true } as never);
  try {
    const bos = model.tokens.bos;
    return [...(bos === null ? [] : [bos]), ...model.tokenize(prompt)];
  } finally {
    await model.dispose();
  }
}

export interface AloraReference {
  /** The prompt's tokens (with BOS when given a text). */
  tokens: number[];
  /** Where the adapter starts acting: the last invocation start, or undefined when the invocation is absent. */
  start: number | undefined;
  /** Next-token log-probabilities, token -> log p. */
  logProbs: Map<number, number>;
}

/**
 * The aLoRA reference, built by hand on llama.cpp: the tokens before the last start of the adapter's invocation
 * sequence (read from its GGUF) are evaluated with no adapters; then the adapter is set on the same context
 * and the rest (the invocation and what follows) is evaluated without clearing the cache. Without an
 * occurrence the adapter is inactive and every token is the base's. `start` overrides the search.
 */
export async function aloraReference(modelPath: string, adapter: LlamaLora, prompt: string | readonly number[], options: { start?: number } = {}): Promise<AloraReference> {
  const tokens = typeof prompt === "string" ? await promptTokens(modelPath, prompt) : [...prompt];
  const invocation = (() => {
    using f = openGguf(adapter.filePath);
    const ids = adapterMeta(f).aloraInvocationTokens;
    if (!ids) throw new Error(`${adapter.filePath} is not an aLoRA adapter`);
    return ids;
  })();
  const start = options.start ?? lastInvocationStart(tokens, invocation);
  const stages: EvalStage[] = start === undefined
    ? [{ end: tokens.length, adapters: [] }]
    : [{ end: start, adapters: [] }, { end: tokens.length, adapters: [adapter] }];
  return { tokens, start, logProbs: await stagedLogProbs(modelPath, tokens, stages) };
}

/**
 * Task switches on one conversation, as the runtime's aLoRA path is to do them: tokens before `start` are
 * evaluated once with no adapters; then for each adapter in turn, the tokens from `start` on are erased from
 * the sequence (the base prefix's cache stays), the adapter is set and they are evaluated again. Returns the
 * next-token log-probabilities after each switch.
 */
export async function aloraSwitchReference(modelPath: string, tokens: readonly number[], start: number, adapters: readonly LlamaLora[]): Promise<Map<number, number>[]> {
  if (start < 0 || start >= tokens.length) throw new Error(`start ${start} is outside the ${tokens.length} tokens`);
  return withAdapterContext(modelPath, async (setLoras, seq) => {
    if (start > 0) await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(0, start) as Token[]);
    const out: Map<number, number>[] = [];
    for (const adapter of adapters) {
      if (seq.contextTokens.length > start) await seq.eraseContextTokenRanges([{ start, end: seq.contextTokens.length }]);
      if (seq.contextTokens.length !== start) throw new Error(`the sequence holds ${seq.contextTokens.length} tokens after the erase, expected ${start}`);
      await setLoras([adapter]);
      for await (const v of seq.evaluateWithMetadata(tokens.slice(start) as Token[], { probabilities: true }, { temperature: 0 })) {
        out.push(new Map([...(v.probabilities as Map<number, number>)].map(([t, p]) => [t, Math.log(p)])));
        break;
      }
    }
    return out;
  });
}

/**
 * llama.cpp's greedy continuation of the aLoRA reference: tokens before `start` evaluated with no adapters, then
 * the adapter set on the same context and the rest evaluated, and `n` tokens generated greedily (one thread,
 * 256 tokens). `start` undefined: the base throughout.
 */
export async function aloraGreedyReference(modelPath: string, adapter: LlamaLora, tokens: readonly number[], start: number | undefined, n: number): Promise<number[]> {
  return withAdapterContext(modelPath, async (setLoras, seq) => {
    const from = start ?? 0;
    if (from > 0) await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(0, from) as Token[]);
    if (start !== undefined) await setLoras([adapter]);
    const out: number[] = [];
    for await (const t of seq.evaluate(tokens.slice(from) as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t as number);
      if (out.length >= n) break;
    }
    return out;
  });
}

/**
 * Runs `fn` on the one sequence of a fresh one-thread, 256-token llama.cpp context of `modelPath`, with a way to
 * change the context's adapters live (node-llama-cpp's internal `_setLoras`, llama_set_adapters_lora); disposes both.
 */
async function withAdapterContext<T>(modelPath: string, fn: (setLoras: (l: LlamaLora[]) => Promise<void>, seq: LlamaContextSequence) => Promise<T>): Promise<T> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    try {
      const setLoras = (context as unknown as { _setLoras?: (l: LlamaLora[]) => Promise<void> })._setLoras;
      if (typeof setLoras !== "function") throw new Error("node-llama-cpp's LlamaContext._setLoras is missing (internal API; node-llama-cpp must be 3.21.1)");
      return await fn((l) => setLoras.call(context, l), context.getSequence());
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}
