// PEFT adapter_config.json: parsing, refusals (DoRA, modules_to_save, bias, ...) and per-module rank/alpha/scale.
import { readFileSync } from "node:fs";
import { UnsupportedAdapterError } from "../../errors.js";
import { invocationTokensProblem } from "../../gguf/alora.js";

export interface PeftLoraConfig {
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  targetModules: string[] | string | null;
  baseModel: string | null;
  /** aLoRA: alora_invocation_tokens, the token ids from whose last occurrence on the adapter acts; null for a plain LoRA. */
  aloraInvocationTokens: number[] | null;
  /** The JSON as read, for fields carried through unchanged. */
  raw: Record<string, unknown>;
}

const isTrue = (v: unknown) => v === true;
const nonEmpty = (v: unknown) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0) && !(typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0) && v !== "";

function numberMap(file: string, field: string, v: unknown): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new UnsupportedAdapterError(file, field, "must be an object of module patterns to numbers");
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) throw new UnsupportedAdapterError(file, `${field}.${k}`, `must be a positive number, got ${JSON.stringify(x)}`);
    out[k] = x;
  }
  return out;
}

/** Parses and checks a PEFT LoRA config; refuses every feature llama.cpp's LoRA cannot express. */
export function parsePeftConfig(file: string, text?: string): PeftLoraConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text ?? readFileSync(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UnsupportedAdapterError(file, "file", code === "ENOENT" ? "no adapter_config.json (not a PEFT adapter directory)" : `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new UnsupportedAdapterError(file, "config", "not a JSON object");
  const c = raw as Record<string, unknown>;
  const refuse = (field: string, why: string): never => { throw new UnsupportedAdapterError(file, field, why); };
  const peftType = c.peft_type ?? "LORA";
  if (peftType !== "LORA") refuse("peft_type", `PEFT type ${JSON.stringify(peftType)} is not supported (only LORA)`);
  if (isTrue(c.use_dora)) refuse("use_dora", "DoRA adapters are not supported: llama.cpp applies plain LoRA only (merge the DoRA adapter in PEFT first)");
  if (nonEmpty(c.modules_to_save)) refuse("modules_to_save", `modules_to_save ${JSON.stringify(c.modules_to_save)} is not supported: fully trained modules cannot be expressed as a LoRA adapter`);
  if (c.bias !== undefined && c.bias !== "none") refuse("bias", `bias ${JSON.stringify(c.bias)} is not supported (only "none"): trained biases cannot be expressed as a LoRA adapter`);
  if (isTrue(c.lora_bias)) refuse("lora_bias", "a bias on lora_B is not supported by llama.cpp's LoRA");
  if (isTrue(c.fan_in_fan_out)) refuse("fan_in_fan_out", "fan_in_fan_out (Conv1D weights, GPT-2 style) is not supported: architecture not supported");
  if (nonEmpty(c.target_parameters)) refuse("target_parameters", "LoRA on raw parameters is not supported");
  if (nonEmpty(c.layer_replication)) refuse("layer_replication", "layer replication is not supported");
  if (nonEmpty(c.megatron_config)) refuse("megatron_config", "Megatron layers are not supported");
  const r = c.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r <= 0) refuse("r", `must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = c.lora_alpha ?? r;
  if (typeof alpha !== "number" || !Number.isFinite(alpha) || alpha <= 0) refuse("lora_alpha", `must be a positive number, got ${JSON.stringify(alpha)}`);
  const rankPattern = numberMap(file, "rank_pattern", c.rank_pattern);
  for (const [k, v] of Object.entries(rankPattern)) if (!Number.isInteger(v)) refuse(`rank_pattern.${k}`, `rank ${v} is not an integer`);
  // aLoRA (PEFT 0.17+): null or [] means a plain LoRA, as in PEFT and llama.cpp's converter.
  const alora = c.alora_invocation_tokens;
  const isAlora = Array.isArray(alora) && alora.length > 0;
  if (alora !== undefined && alora !== null && !Array.isArray(alora)) refuse("alora_invocation_tokens", `must be a list of token ids or null, got ${JSON.stringify(alora)}`);
  if (isAlora) {
    const bad = invocationTokensProblem(alora);
    if (bad) refuse("alora_invocation_tokens", bad);
  } else if (typeof c.invocation_string === "string" && c.invocation_string !== "") {
    refuse("invocation_string", "an aLoRA config with invocation_string but no alora_invocation_tokens (an older format) is not supported: " +
      "tokenize the invocation with the base's tokenizer and give the ids as alora_invocation_tokens");
  }
  const tm = c.target_modules;
  return {
    r: r as number,
    loraAlpha: alpha as number,
    useRslora: isTrue(c.use_rslora),
    rankPattern,
    alphaPattern: numberMap(file, "alpha_pattern", c.alpha_pattern),
    targetModules: Array.isArray(tm) ? tm.map(String) : typeof tm === "string" ? tm : null,
    baseModel: typeof c.base_model_name_or_path === "string" ? c.base_model_name_or_path : null,
    aloraInvocationTokens: isAlora ? [...(alora as number[])] : null,
    raw: c,
  };
}

/**
 * The pattern key PEFT picks for a module: an exact key first, else the first key K (in file order) with
 * the module name matching the regular expression `^(.*\.)?(K)$`; undefined when none matches.
 */
export function matchPattern(keys: readonly string[], moduleName: string): string | undefined {
  if (keys.includes(moduleName)) return moduleName;
  for (const k of keys) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:.*\\.)?(?:${k})$`);
    } catch {
      continue;
    }
    if (re.test(moduleName)) return k;
  }
  return undefined;
}

/** Rank, alpha and PEFT's scale for one module (name as in the model, e.g. "model.layers.3.self_attn.q_proj"). */
export function moduleScaling(cfg: PeftLoraConfig, moduleName: string): { rank: number; alpha: number; scale: number } {
  const rk = matchPattern(Object.keys(cfg.rankPattern), moduleName);
  const ak = matchPattern(Object.keys(cfg.alphaPattern), moduleName);
  const rank = rk !== undefined ? cfg.rankPattern[rk] : cfg.r;
  const alpha = ak !== undefined ? cfg.alphaPattern[ak] : cfg.loraAlpha;
  return { rank, alpha, scale: cfg.useRslora ? alpha / Math.sqrt(rank) : alpha / rank };
}
