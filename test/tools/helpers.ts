// Test helpers for the adapter tools: seeded random LoRAs, PEFT directories, reference merged models, log-prob errors.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openGguf } from "../../src/gguf/reader.js";
import { kvInputsFrom, writeGguf } from "../../src/gguf/writer.js";
import { writeSafetensors, SafetensorsDtype } from "../../src/tools/safetensors.js";
import { encodeFromF32 } from "../../src/tools/tensor-codec.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import type { LlamaModel, Token } from "node-llama-cpp";
import { cpuLlama } from "../llama.js";
import { mulberry32 } from "../../src/random.js";

/** Seeded uniform numbers in [-1, 1). */
export function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
}

export function randomArray(n: number, scale: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => r() * scale);
}

export const STORIES_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
const GGUF_OF: Record<string, string> = { q_proj: "attn_q", k_proj: "attn_k", v_proj: "attn_v", o_proj: "attn_output", gate_proj: "ffn_gate", up_proj: "ffn_up", down_proj: "ffn_down" };
const PARENT: Record<string, string> = { q_proj: "self_attn", k_proj: "self_attn", v_proj: "self_attn", o_proj: "self_attn", gate_proj: "mlp", up_proj: "mlp", down_proj: "mlp" };

export interface TestModule { module: string; target: string; nIn: number; nOut: number }

/** Every projection of a llama-family GGUF, with its PEFT module name and shape. */
export function projections(basePath: string, modules: readonly string[] = STORIES_MODULES): TestModule[] {
  using g = openGguf(basePath);
  const nLayer = Number(g.get(`${String(g.get("general.architecture"))}.block_count`));
  const out: TestModule[] = [];
  for (let l = 0; l < nLayer; l++) {
    for (const m of modules) {
      const target = `blk.${l}.${GGUF_OF[m]}.weight`;
      const t = g.tensor(target)!;
      out.push({ module: `model.layers.${l}.${PARENT[m]}.${m}`, target, nIn: t.ne[0], nOut: t.ne[1] });
    }
  }
  return out;
}

export interface TestDelta { target: string; nIn: number; nOut: number; rank: number; a: Float32Array; b: Float32Array; scale: number }

/** Writes a PEFT directory: adapter_config.json and adapter_model.safetensors with the given halves (A r x nIn, B nOut x r). */
export function writePeftDir(dir: string, config: Record<string, unknown>, halves: { module: string; a: Float32Array; b: Float32Array; rank: number; nIn: number; nOut: number; dtype?: SafetensorsDtype }[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", task_type: "CAUSAL_LM", bias: "none", ...config }));
  const toBytes = (x: Float32Array, dt: SafetensorsDtype) => encodeFromF32(x, dt === "F32" ? GgmlType.F32 : dt === "F16" ? GgmlType.F16 : GgmlType.BF16);
  const t = (x: Float32Array, rows: number, cols: number) => Float32Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]);
  writeSafetensors(join(dir, "adapter_model.safetensors"), halves.flatMap((h) => h.module.endsWith("embed_tokens") ? [
    // PEFT's embedding LoRA: lora_embedding_A [r, n_vocab] = Bᵀ, lora_embedding_B [n_embd, r] = Aᵀ (a, b in the weight's layout).
    { name: `base_model.model.${h.module}.lora_embedding_A`, dtype: h.dtype ?? "F32", shape: [h.rank, h.nOut], data: toBytes(t(h.b, h.nOut, h.rank), h.dtype ?? "F32") },
    { name: `base_model.model.${h.module}.lora_embedding_B`, dtype: h.dtype ?? "F32", shape: [h.nIn, h.rank], data: toBytes(t(h.a, h.rank, h.nIn), h.dtype ?? "F32") },
  ] : [
    { name: `base_model.model.${h.module}.lora_A.weight`, dtype: h.dtype ?? "F32", shape: [h.rank, h.nIn], data: toBytes(h.a, h.dtype ?? "F32") },
    { name: `base_model.model.${h.module}.lora_B.weight`, dtype: h.dtype ?? "F32", shape: [h.nOut, h.rank], data: toBytes(h.b, h.dtype ?? "F32") },
  ]));
}

/** Writes an F32 copy of an F32 base with W + scale·B·A for every delta (naive reference loops). */
export function writeMergedF32(basePath: string, out: string, deltas: readonly TestDelta[]): void {
  using g = openGguf(basePath);
  const byTarget = new Map<string, TestDelta[]>();
  for (const d of deltas) byTarget.set(d.target, [...(byTarget.get(d.target) ?? []), d]);
  writeGguf(out, {
    kv: kvInputsFrom(g),
    tensors: g.tensors.map((t) => ({
      name: t.name, type: t.type, ne: t.ne,
      data: () => {
        const bytes = g.readTensor(t);
        const ds = byTarget.get(t.name);
        if (!ds) return bytes;
        if (t.type.id !== GgmlType.F32) throw new Error("reference merge needs an F32 base");
        const w = new Float32Array(bytes.buffer, bytes.byteOffset, t.nElements);
        for (const d of ds) {
          for (let o = 0; o < d.nOut; o++) {
            for (let i = 0; i < d.nIn; i++) {
              let acc = 0;
              for (let k = 0; k < d.rank; k++) acc += d.b[o * d.rank + k] * d.a[k * d.nIn + i];
              w[o * d.nIn + i] += d.scale * acc;
            }
          }
        }
        return bytes;
      },
    })),
  });
}

/**
 * Normwise logit error from log-probabilities (log p = logit - one constant per position): over the tokens with
 * p_b > 1e-6, both vectors are centred on their mean (removing the constant), then max |a - b| / max |b|.
 * The far tail is left out: its f32 probabilities carry no usable digits.
 */
export function logprobError(a: Map<number, number>, b: Map<number, number>): number {
  const keep = [...b].filter(([, lb]) => lb >= Math.log(1e-6));
  const xa = keep.map(([t]) => a.get(t) ?? Math.log(1e-30));
  const xb = keep.map(([, lb]) => lb);
  const ma = xa.reduce((s, x) => s + x, 0) / xa.length;
  const mb = xb.reduce((s, x) => s + x, 0) / xb.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xb.length; i++) {
    num = Math.max(num, Math.abs(xa[i] - ma - (xb[i] - mb)));
    den = Math.max(den, Math.abs(xb[i] - mb));
  }
  return num / den;
}

export const PROMPTS = ["Once upon a time", "Lily and Tom went to the park"];

const cache = new Map<string, Promise<Map<number, number>[]>>();

/** llama.cpp's next-token log-probabilities after each token sequence, one model load and one context per call. */
async function nextLogProbs(modelPath: string, adapters: { filePath: string; scale: number }[], threads: number, inputs: (model: LlamaModel) => readonly Token[][]): Promise<Map<number, number>[]> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({ contextSize: 128, threads, lora: adapters.length ? { adapters } : undefined });
    try {
      const out: Map<number, number>[] = [];
      const seq = context.getSequence();
      for (const tokens of inputs(model)) {
        await seq.clearHistory();
        for await (const v of seq.evaluateWithMetadata(tokens, { probabilities: true }, { temperature: 0 })) {
          out.push(new Map([...(v.probabilities as Map<number, number>)].map(([t, q]) => [t, Math.log(q)])));
          break;
        }
      }
      return out;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * Next-token log-probabilities for each prompt, memoised by (model, adapters, prompts): every file a test
 * writes has a fresh name, so a cached entry never goes stale.
 */
export function logProbs(modelPath: string, adapters: { filePath: string; scale: number }[] = [], prompts: readonly string[] = PROMPTS): Promise<Map<number, number>[]> {
  const key = JSON.stringify([modelPath, adapters, prompts]);
  let p = cache.get(key);
  if (!p) {
    p = nextLogProbs(modelPath, adapters, 2, (model) => prompts.map((prompt) => model.tokenize(prompt, true)));
    cache.set(key, p);
  }
  return p;
}

/** Next-token log-probabilities after each token sequence (ids as given, no BOS added), on one thread. */
export function tokenLogProbs(modelPath: string, adapters: { filePath: string; scale: number }[], sequences: readonly number[][]): Promise<Map<number, number>[]> {
  return nextLogProbs(modelPath, adapters, 1, () => sequences as Token[][]);
}

/** Largest logprobError over the prompts between two configurations. */
export async function worstError(a: Promise<Map<number, number>[]>, b: Promise<Map<number, number>[]>): Promise<number> {
  const [x, y] = await Promise.all([a, b]);
  return Math.max(...y.map((yi, i) => logprobError(x[i], yi)));
}
