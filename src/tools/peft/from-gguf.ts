// llama.cpp adapter GGUF -> PEFT LoRA directory (adapter_config.json + adapter_model.safetensors) for PEFT, vLLM, LoRAX.
import { AtomicDir, checkOutput, writeText } from "../../output-file.js";
import { GgmlType } from "../../gguf/ggml-types.js";
import { UnsupportedAdapterError } from "../../errors.js";
import { readAdapter, sortPairs, pairScale, TOKEN_EMBD, transpose32 } from "../lora.js";
import { SafetensorInput, writeSafetensors } from "../safetensors.js";
import { encodeFromF32 } from "../tensor-codec.js";
import { hfModuleOf, shortModule, SUPPORTED_ARCHITECTURES } from "./names.js";
import { openGguf, plainValue, type GgufValue } from "../../gguf/reader.js";
import type { GgufKVInput } from "../../gguf/writer.js";
import { ALORA_INVOCATION_KEY, invocationTokensProblem, vocabularySize } from "../../gguf/alora.js";
import { ggufToHfRows, headCounts, ropeHeadsOf } from "./rope-order.js";

export interface GgufToPeftResult {
  output: string;
  pairs: number;
  r: number;
  loraAlpha: number;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  dtype: "F32" | "F16";
  /** aLoRA: the invocation token ids written as alora_invocation_tokens; null for a plain LoRA. */
  aloraInvocationTokens: number[] | null;
}

function mostCommon(xs: number[]): number {
  const c = new Map<number, number>();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return [...c.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0][0];
}

/**
 * Writes the PEFT form of a GGUF adapter. Scaling is kept exactly: r is the most common rank, rank_pattern
 * lists the others; lora_alpha is the GGUF alpha (without one, llama.cpp's scale is 1, so each module gets
 * alpha = its rank, through alpha_pattern where that differs from r). F16 halves stay F16, others become F32.
 * For the llama architecture, lora_b of attn_q/attn_k goes back to Hugging Face's RoPE row order, which needs
 * the base model's head counts (`base`, the GGUF the adapter was made for).
 * The directory is built beside the target under a temp name and renamed into place. An existing non-empty
 * directory is refused unless `force`, which replaces the two files in it (others are left alone).
 */
export function ggufToPeft(input: string, outDir: string, opts: { baseModel?: string; base?: string; force?: boolean } = {}): GgufToPeftResult {
  const out = { overwrite: opts.force ?? false, inputs: [input, ...(opts.base ? [opts.base] : [])] };
  checkOutput(outDir, out, "directory");
  const ad = readAdapter(input);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(ad.architecture)) {
    throw new UnsupportedAdapterError(input, "general.architecture", `architecture not supported: ${ad.architecture} (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`);
  }
  const alora = aloraTokens(input, ad.extraKv, opts.base);
  const pairs = sortPairs(ad.pairs);
  const modules = pairs.map((p) => {
    const m = hfModuleOf(p.target);
    if (!m) throw new UnsupportedAdapterError(input, p.target, "no Hugging Face module corresponds to this tensor in the llama family");
    return m;
  });
  const reorder = ropeRowOrder(input, ad.architecture, pairs.map((p) => p.target), opts.base);
  const r = mostCommon(pairs.map((p) => p.rank));
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const loraAlpha = ad.alpha ?? r;
  pairs.forEach((p, i) => {
    if (p.rank !== r) rankPattern[modules[i]] = p.rank;
    // PEFT's scale alpha_m / r_m must equal llama.cpp's pairScale.
    const alphaM = pairScale(ad, p) * p.rank;
    if (Math.abs(alphaM - loraAlpha) > 1e-6 * Math.abs(loraAlpha)) alphaPattern[modules[i]] = alphaM;
  });
  const f16 = pairs.every((p) => p.typeA === GgmlType.F16 && p.typeB === GgmlType.F16);
  const dtype = f16 ? "F16" : "F32";
  const gt = f16 ? GgmlType.F16 : GgmlType.F32;
  const tensors: SafetensorInput[] = [];
  pairs.forEach((p, i) => {
    const key = `base_model.model.${modules[i]}`;
    if (p.target === TOKEN_EMBD) {
      // PEFT's embedding LoRA: lora_embedding_A [r, n_vocab] = Bᵀ, lora_embedding_B [n_embd, r] = Aᵀ.
      tensors.push({ name: `${key}.lora_embedding_A`, dtype, shape: [p.rank, p.nOut], data: encodeFromF32(transpose32(p.b, p.nOut, p.rank), gt) });
      tensors.push({ name: `${key}.lora_embedding_B`, dtype, shape: [p.nIn, p.rank], data: encodeFromF32(transpose32(p.a, p.rank, p.nIn), gt) });
      return;
    }
    tensors.push({ name: `${key}.lora_A.weight`, dtype, shape: [p.rank, p.nIn], data: encodeFromF32(p.a, gt) });
    const heads = reorder(p.target);
    const b = heads ? ggufToHfRows(p.b, p.nOut, p.rank, heads, input, p.target) : p.b;
    tensors.push({ name: `${key}.lora_B.weight`, dtype, shape: [p.nOut, p.rank], data: encodeFromF32(b, gt) });
  });
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: opts.baseModel ?? null,
    r,
    lora_alpha: loraAlpha,
    lora_dropout: 0,
    target_modules: [...new Set(modules.map(shortModule))].sort(),
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    bias: "none",
    use_rslora: false,
    use_dora: false,
    fan_in_fan_out: false,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    inference_mode: true,
    revision: null,
    // Written only for an aLoRA adapter, so that PEFT versions without aLoRA still read plain adapters.
    ...(alora ? { alora_invocation_tokens: alora } : {}),
  };
  const dir = new AtomicDir(outDir, out);
  try {
    writeSafetensors(dir.file("adapter_model.safetensors"), tensors, { format: "pt" });
    writeText(dir.file("adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
  } catch (e) {
    dir.discard();
    throw e;
  }
  dir.commit();
  return { output: outDir, pairs: pairs.length, r, loraAlpha, rankPattern, alphaPattern, dtype, aloraInvocationTokens: alora };
}

/**
 * The adapter's aLoRA invocation ids, or null for a plain LoRA; with the base given, every id must lie inside
 * its vocabulary (an id outside it would never occur, so the adapter would never act).
 */
function aloraTokens(input: string, extraKv: readonly GgufKVInput[], base: string | undefined): number[] | null {
  const e = extraKv.find((k) => k.key === ALORA_INVOCATION_KEY);
  if (!e) return null;
  const tokens = plainValue(e.value as GgufValue) as number[];
  let nVocab: number | undefined;
  if (base) {
    using f = openGguf(base);
    nVocab = vocabularySize(f);
  }
  const bad = invocationTokensProblem(tokens, nVocab);
  if (bad) throw new UnsupportedAdapterError(input, ALORA_INVOCATION_KEY, base ? `${bad} (${base})` : bad);
  return tokens;
}

/** Heads to reorder per target (0: none); reads the base's head counts only when some pair needs them. */
function ropeRowOrder(input: string, architecture: string, targets: readonly string[], base: string | undefined): (target: string) => number {
  const needs = targets.filter((t) => ropeHeadsOf(architecture, t, 1, 1) > 0);
  if (needs.length === 0) return () => 0;
  if (!base) {
    throw new UnsupportedAdapterError(input, needs[0], `the base model is needed (-m BASE.gguf): ${architecture} stores q/k rows in llama.cpp's RoPE order, and Hugging Face's order depends on the head count`);
  }
  using f = openGguf(base);
  const arch = String(f.get("general.architecture") ?? "");
  if (arch !== architecture) throw new UnsupportedAdapterError(base, "general.architecture", `'${arch}', the adapter is for '${architecture}'`);
  const { nHead, nHeadKv } = headCounts(f, architecture);
  return (target) => ropeHeadsOf(architecture, target, nHead, nHeadKv);
}
