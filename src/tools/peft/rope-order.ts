// Row order of the q/k projections: Hugging Face's rotate-half RoPE layout against llama.cpp's interleaved pairs in llama GGUFs.
import { UnsupportedAdapterError } from "../../errors.js";

/**
 * llama.cpp rotates adjacent pairs (2i, 2i+1) of each head for the llama architecture, while Hugging Face's
 * llama rotates the two halves (i, i + d/2). Its converter therefore reorders the rows of q_proj and k_proj
 * head by head: GGUF row h·d + 2i + j holds Hugging Face row h·d + j·d/2 + i. A LoRA's delta B·A moves with
 * the rows, so lora_b's rows follow the same order and lora_a is unchanged. Architectures with neox-style
 * RoPE in llama.cpp (qwen2, qwen3) keep Hugging Face's order.
 */
const INTERLEAVED_ROPE = new Set(["llama", "mistral"]);

/** Heads whose rows a target's lora_b must reorder (q: n_head, k: n_head_kv), or 0 when its order is the same. */
export function ropeHeadsOf(architecture: string, target: string, nHead: number, nHeadKv: number): number {
  if (!INTERLEAVED_ROPE.has(architecture)) return 0;
  if (/^blk\.\d+\.attn_q\.weight$/.test(target)) return nHead;
  if (/^blk\.\d+\.attn_k\.weight$/.test(target)) return nHeadKv;
  return 0;
}

/** For each GGUF row, the Hugging Face row it comes from. */
function hfRowOfGgufRow(nOut: number, heads: number, file: string, field: string): Int32Array {
  const headDim = nOut / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new UnsupportedAdapterError(file, field, `${nOut} rows do not split into ${heads} heads of an even size, so the RoPE row order cannot be mapped`);
  }
  const half = headDim / 2;
  const from = new Int32Array(nOut);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) from[h * headDim + 2 * i + j] = h * headDim + j * half + i;
    }
  }
  return from;
}

/** lora_b (nOut x rank, row-major) from Hugging Face's row order to the GGUF's. */
export function hfToGgufRows(b: Float32Array, nOut: number, rank: number, heads: number, file: string, field: string): Float32Array {
  const from = hfRowOfGgufRow(nOut, heads, file, field);
  const out = new Float32Array(b.length);
  for (let g = 0; g < nOut; g++) out.set(b.subarray(from[g] * rank, from[g] * rank + rank), g * rank);
  return out;
}

/** lora_b (nOut x rank, row-major) from the GGUF's row order back to Hugging Face's. */
export function ggufToHfRows(b: Float32Array, nOut: number, rank: number, heads: number, file: string, field: string): Float32Array {
  const from = hfRowOfGgufRow(nOut, heads, file, field);
  const out = new Float32Array(b.length);
  for (let g = 0; g < nOut; g++) out.set(b.subarray(g * rank, g * rank + rank), from[g] * rank);
  return out;
}

/** The base model's attention head counts (n_head_kv defaults to n_head), from its GGUF metadata. */
export function headCounts(base: { path: string; get(key: string): unknown }, architecture: string): { nHead: number; nHeadKv: number } {
  const nHead = base.get(`${architecture}.attention.head_count`);
  if (typeof nHead !== "number" || !(nHead > 0)) throw new UnsupportedAdapterError(base.path, `${architecture}.attention.head_count`, "missing or not a positive number");
  const kv = base.get(`${architecture}.attention.head_count_kv`);
  return { nHead, nHeadKv: typeof kv === "number" && kv > 0 ? kv : nHead };
}
