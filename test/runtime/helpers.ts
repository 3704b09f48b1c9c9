// Shared helpers of the runtime tests: fixture paths, a CPU runtime, and log-prob comparison with reference logits.
import path from "node:path";
import { fixture } from "../fixtures.js";
import { GgufValueType, openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, tensorInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { Runtime, type RuntimeOptions } from "../../src/runtime/index.js";

export const MODEL = fixture("models/stories260K.gguf");
export const MODEL_Q4 = fixture("models/stories260K-Q4_0.gguf");
export const MODEL_Q8 = fixture("models/stories260K-Q8_0.gguf");
export const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
export const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
export const WRONG_BASE = fixture("models/llama-2-tiny-random.gguf");
export const REFERENCE = fixture("models/stories260K-reference-logits.txt");

/** A CPU runtime on a small context, one thread (tests share the cores with each other). */
export function openCpu(options: RuntimeOptions = {}): Promise<Runtime> {
  return Runtime.open({ model: MODEL, gpu: false, threads: 1, contextSize: 256, ...options });
}

/**
 * Normwise error of log-probabilities against reference logits on the reference's tokens:
 * log p differs from the logit by one constant, removed by aligning means; error = max|a-b| / max|b|.
 */
export function logitError(logProbs: Float64Array, ref: { token: number; logit: number }[]): number {
  const shift = ref.reduce((s, r) => s + (r.logit - logProbs[r.token]), 0) / ref.length;
  let num = 0;
  let den = 0;
  for (const r of ref) {
    num = Math.max(num, Math.abs(logProbs[r.token] + shift - r.logit));
    den = Math.max(den, Math.abs(r.logit));
  }
  return num / den;
}

/** The ids of the k most probable tokens, most probable first. */
export function topK(logProbs: Float64Array, k: number): number[] {
  return [...logProbs.keys()].sort((a, b) => logProbs[b] - logProbs[a]).slice(0, k);
}

/** Exact equality of two distributions. */
export function sameArray(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * A chat template written for these tests (stories260K has none): roles as plain text, the vocabulary's BOS and
 * EOS as control tokens, and a refusal of unknown roles through raise_exception.
 */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}" +
  "{% if m['role'] == 'system' %}{{ m['content'] | trim }}\n\n" +
  "{% elif m['role'] == 'user' %}Q: {{ m['content'] | trim }}\n" +
  "{% elif m['role'] == 'assistant' %}A: {{ m['content'] | trim }}{{ eos_token }}\n" +
  "{% else %}{{ raise_exception('unknown role ' + m['role']) }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}A:{% endif %}";

/** A copy of `model` with `tokenizer.chat_template` set, written by lora-edge's GGUF writer into `dir`. */
export function withChatTemplate(model: string, template: string, dir: string): string {
  const src = openGguf(model);
  try {
    const out = path.join(dir, path.basename(model).replace(/\.gguf$/, "-chat.gguf"));
    const kv = kvInputsFrom(src).filter((k) => k.key !== "tokenizer.chat_template");
    kv.push({ key: "tokenizer.chat_template", type: GgufValueType.STRING, value: template });
    writeGguf(out, { kv, tensors: tensorInputsFrom(src), alignment: src.alignment });
    return out;
  } finally {
    src.close();
  }
}
