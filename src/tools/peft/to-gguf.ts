// PEFT LoRA directory -> llama.cpp adapter GGUF, with PEFT's exact per-module scaling folded into one alpha.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openGguf } from "../../gguf/reader.js";
import { GgmlType } from "../../gguf/ggml-types.js";
import { UnsupportedAdapterError } from "../../errors.js";
import { LoraAdapter, LoraPair, transpose32, TypeChooser, writeAdapter } from "../lora.js";
import { openSafetensors, SafetensorInfo } from "../safetensors.js";
import { checkOutput } from "../../output-file.js";
import { AdapterDataError } from "../../errors.js";
import { moduleScaling, parsePeftConfig } from "./config.js";
import { aloraInvocationKv, invocationTokensProblem, vocabularySize } from "../../gguf/alora.js";
import { mapPeftKey, SUPPORTED_ARCHITECTURES } from "./names.js";
import { headCounts, hfToGgufRows, ropeHeadsOf } from "./rope-order.js";

export interface PeftToGgufOptions {
  /** Output tensor type: "auto" keeps F16 when every source tensor is F16 and nothing is rescaled, else F32. */
  outType?: "auto" | "f32" | "f16";
  name?: string;
  /** Replace an existing output (an input is never replaced). */
  force?: boolean;
}

export interface PeftToGgufResult {
  output: string;
  architecture: string;
  pairs: number;
  ranks: number[];
  /** adapter.lora.alpha written. */
  alpha: number;
  /** Pairs whose PEFT scale differs from alpha / rank, with the factor folded into lora_b. */
  folded: { target: string; factor: number }[];
  types: string[];
  /** aLoRA: the invocation token ids written as adapter.alora.invocation_tokens; null for a plain LoRA. */
  aloraInvocationTokens: number[] | null;
}

/**
 * The scaling scheme. llama.cpp applies alpha / r per pair, with one alpha per file; PEFT applies
 * s_m = alpha_m / r_m (or alpha_m / sqrt(r_m) with rsLoRA), per module through rank_pattern and alpha_pattern.
 * Each module needs alpha_gguf = s_m · r_m. The value shared by most pairs becomes adapter.lora.alpha
 * (ties: the larger); every other pair gets lora_b multiplied by s_m · r_m / alpha_gguf. The product
 * scale · B · A is PEFT's for every module, and the user scale still multiplies all of them alike.
 */
export function chooseAlpha(wanted: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const w of wanted) counts.set(Math.fround(w), (counts.get(Math.fround(w)) ?? 0) + 1);
  let best = 0;
  let bestCount = -1;
  for (const [v, n] of counts) if (n > bestCount || (n === bestCount && v > best)) { best = v; bestCount = n; }
  return best;
}

/** `x` when every value is finite, else an AdapterDataError naming the file and the tensor (its full key). */
function finiteValues(file: string, key: string, x: Float32Array): Float32Array {
  let count = 0;
  let first = -1;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) { if (count++ === 0) first = i; }
  if (count) throw new AdapterDataError(file, key, `holds ${count} NaN or Inf value(s) (the first at element ${first})`);
  return x;
}

/**
 * Converts a PEFT LoRA directory for a llama-family base; every check runs before anything is written.
 * Errors about a tensor of the PEFT file name it by its key as stored in adapter_model.safetensors.
 */
export function peftToGguf(dir: string, basePath: string, output: string, opts: PeftToGgufOptions = {}): PeftToGgufResult {
  if (!existsSync(dir)) throw new UnsupportedAdapterError(dir, "file", "no such file or directory");
  if (!statSync(dir).isDirectory()) throw new UnsupportedAdapterError(dir, "directory", "not a directory (a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors)");
  const cfgPath = join(dir, "adapter_config.json");
  const stPath = join(dir, "adapter_model.safetensors");
  const out = { overwrite: opts.force ?? false, inputs: [dir, cfgPath, stPath, basePath] };
  checkOutput(output, out);
  const cfg = parsePeftConfig(cfgPath);
  if (!existsSync(stPath)) {
    const why = existsSync(join(dir, "adapter_model.bin")) ? "only adapter_model.bin (a pickle) is present; save the adapter with safetensors" : "missing";
    throw new UnsupportedAdapterError(stPath, "file", why);
  }
  const st = openSafetensors(stPath);
  try {
    // 1. Every key must map to the llama family.
    const groups = new Map<string, { module: string; embedding: boolean; A?: SafetensorInfo; B?: SafetensorInfo }>();
    for (const t of st.tensors) {
      const m = mapPeftKey(t.name);
      if ("unmapped" in m) {
        if (m.unmapped === "unknown" && /(^|\.)model\.layers\.\d+\./.test(t.name)) {
          throw new UnsupportedAdapterError(stPath, t.name, "not a supported LoRA tensor: only lora_A/lora_B of q/k/v/o_proj, gate/up/down_proj, lm_head and lora_embedding_A/B of embed_tokens are converted");
        }
        const hint = /c_attn/.test(t.name) ? " (GPT-2 style fused c_attn)" : "";
        throw new UnsupportedAdapterError(stPath, t.name, `architecture not supported${hint}: only the llama family (llama, mistral, qwen2, qwen3, smollm: q/k/v/o_proj, gate/up/down_proj, lm_head, embed_tokens) can be converted`);
      }
      const g = groups.get(m.target) ?? { module: m.module, embedding: m.embedding === true };
      if (g[m.half]) throw new UnsupportedAdapterError(stPath, t.name, `maps to the same ${m.target} half as ${g[m.half]!.name}`);
      g[m.half] = t;
      groups.set(m.target, g);
    }
    if (groups.size === 0) throw new UnsupportedAdapterError(stPath, "tensors", "no LoRA tensors in the file");

    // 2. The base must be a llama-family model with every target tensor, shapes matching.
    const base = openGguf(basePath);
    let architecture: string;
    const pairs: LoraPair[] = [];
    const wanted: number[] = [];
    const scales: number[] = [];
    try {
      architecture = String(base.get("general.architecture") ?? "");
      if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
        throw new UnsupportedAdapterError(basePath, "general.architecture", `architecture not supported: ${architecture || "(missing)"} (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`);
      }
      if (cfg.aloraInvocationTokens) {
        const bad = invocationTokensProblem(cfg.aloraInvocationTokens, vocabularySize(base));
        if (bad) throw new UnsupportedAdapterError(cfgPath, "alora_invocation_tokens", `${bad} (${basePath})`);
      }
      const heads = headCounts(base, architecture);
      for (const [target, g] of groups) {
        if (!g.A || !g.B) {
          const present = (g.A ?? g.B)!.name;
          const missing = g.A ? present.replace(/lora_(embedding_)?A/, "lora_$1B") : present.replace(/lora_(embedding_)?B/, "lora_$1A");
          throw new UnsupportedAdapterError(stPath, missing, `missing half: the file has ${present} but not this one`);
        }
        const w = base.tensor(target);
        if (!w || w.ne.length !== 2) throw new UnsupportedAdapterError(basePath, target, `the base has no 2-D tensor ${target} for ${g.A.name}`);
        const [nIn, nOut] = w.ne;
        const { rank, alpha, scale } = moduleScaling(cfg, g.module);
        const sa = g.A.shape;
        const sb = g.B.shape;
        // Linear: A [r, n_in], B [n_out, r]. Embedding (token_embd ne [n_embd, n_vocab]): A [r, n_vocab], B [n_embd, r].
        const wantA = g.embedding ? [rank, nOut] : [rank, nIn];
        const wantB = g.embedding ? [nIn, rank] : [nOut, rank];
        if (sa.length !== 2 || sa[0] !== wantA[0] || sa[1] !== wantA[1]) {
          throw new UnsupportedAdapterError(stPath, g.A.name, `shape [${sa.join(", ")}] but the base's ${target} [${w.ne.join(", ")}] and rank ${rank} need [${wantA.join(", ")}]`);
        }
        if (sb.length !== 2 || sb[0] !== wantB[0] || sb[1] !== wantB[1]) {
          throw new UnsupportedAdapterError(stPath, g.B.name, `shape [${sb.join(", ")}] but the base's ${target} [${w.ne.join(", ")}] and rank ${rank} need [${wantB.join(", ")}]`);
        }
        void alpha;
        let a = finiteValues(stPath, g.A.name, st.readF32(g.A));
        let b = finiteValues(stPath, g.B.name, st.readF32(g.B));
        // ΔE = (B A)ᵀ = Aᵀ Bᵀ for an embedding: in the base weight's layout, B' = Aᵀ and A' = Bᵀ.
        if (g.embedding) [a, b] = [transpose32(b, nIn, rank), transpose32(a, rank, nOut)];
        const ropeHeads = ropeHeadsOf(architecture, target, heads.nHead, heads.nHeadKv);
        if (ropeHeads) b = hfToGgufRows(b, nOut, rank, ropeHeads, basePath, target);
        pairs.push({ target, nIn, nOut, rank, a, b, typeA: g.A.dtype === "F16" ? GgmlType.F16 : GgmlType.F32, typeB: g.B.dtype === "F16" ? GgmlType.F16 : GgmlType.F32 });
        scales.push(scale);
        wanted.push(scale * rank);
      }
    } finally {
      base.close();
    }

    // 3. One alpha for the file; fold the rest into B.
    const alpha = chooseAlpha(wanted);
    const folded: { target: string; factor: number }[] = [];
    pairs.forEach((p, i) => {
      const factor = (scales[i] * p.rank) / alpha;
      if (Math.fround(wanted[i]) !== alpha) {
        for (let j = 0; j < p.b.length; j++) p.b[j] *= factor;
        folded.push({ target: p.target, factor });
      }
    });
    const outType = opts.outType ?? "auto";
    const allF16 = pairs.every((p) => p.typeA === GgmlType.F16 && p.typeB === GgmlType.F16);
    const f16 = outType === "f16" || (outType === "auto" && allF16 && folded.length === 0);
    const choose: TypeChooser = () => (f16 ? GgmlType.F16 : GgmlType.F32);
    const adapter: LoraAdapter = { architecture, alpha, pairs, extraKv: cfg.aloraInvocationTokens ? [aloraInvocationKv(cfg.aloraInvocationTokens)] : [] };
    const { types } = writeAdapter(output, adapter, choose, opts.name, out);
    return {
      output, architecture, pairs: pairs.length,
      ranks: [...new Set(pairs.map((p) => p.rank))].sort((x, y) => x - y),
      alpha, folded, types: [...new Set(Object.values(types))], aloraInvocationTokens: cfg.aloraInvocationTokens,
    };
  } finally {
    st.close();
  }
}
