// Test helper: llama.cpp (through node-llama-cpp, CPU) next-token log-probabilities for a model and adapters.
import { getLlama, Llama } from "node-llama-cpp";
import { availableParallelism } from "node:os";

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
