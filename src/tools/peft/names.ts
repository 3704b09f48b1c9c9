// Hugging Face module names <-> GGUF tensor names for the llama family (llama, mistral, qwen2, qwen3, smollm).
/** GGUF architectures whose projections this module maps. */
export const SUPPORTED_ARCHITECTURES = ["llama", "mistral", "qwen2", "qwen3"] as const;

const HF_TO_GGUF: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};
const GGUF_TO_HF = Object.fromEntries(Object.entries(HF_TO_GGUF).map(([h, g]) => [g, h]));

export interface PeftKey {
  /** Module name inside the model, as PEFT's patterns see it, e.g. "model.layers.0.self_attn.q_proj". */
  module: string;
  /** GGUF base tensor, e.g. "blk.0.attn_q.weight". */
  target: string;
  half: "A" | "B";
  /** An embedding LoRA (lora_embedding_A/B: A is r x n_vocab, B is n_embd x r). */
  embedding?: boolean;
}

/** Why a key did not map: "foreign" means another model family's naming (GPT-2, Falcon, ...). */
export type UnmappedReason = "foreign" | "unknown";

const KEY_RE = /^(?:base_model\.model\.)?(model\.layers\.(\d+)\.((?:self_attn|mlp)\.[a-z_]+)|lm_head)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;
const EMBED_RE = /^(?:base_model\.model\.)?model\.embed_tokens\.lora_embedding_([AB])(?:\.[A-Za-z0-9_-]+)?(?:\.weight)?$/;
const FOREIGN_RE = /(^|\.)(transformer\.h\.\d+|c_attn|c_proj|c_fc|query_key_value|dense_h_to_4h|dense_4h_to_h|Wqkv|qkv_proj|gate_up_proj|attn\.out_proj|fc1|fc2|encoder|decoder)(\.|$)/;

/** Maps one safetensors key of a PEFT LoRA to its GGUF target, or says why it cannot. */
export function mapPeftKey(key: string): PeftKey | { unmapped: UnmappedReason } {
  const e = EMBED_RE.exec(key);
  if (e) return { module: "model.embed_tokens", target: "token_embd.weight", half: e[1] as "A" | "B", embedding: true };
  const m = KEY_RE.exec(key);
  if (m) {
    if (m[1] === "lm_head") return { module: "lm_head", target: "output.weight", half: m[4] as "A" | "B" };
    const g = HF_TO_GGUF[m[3]];
    if (g) return { module: m[1], target: `blk.${m[2]}.${g}.weight`, half: m[4] as "A" | "B" };
  }
  return { unmapped: FOREIGN_RE.test(key) ? "foreign" : "unknown" };
}

/** The Hugging Face module name of a GGUF base tensor, or undefined when it has none in the llama family. */
export function hfModuleOf(target: string): string | undefined {
  if (target === "output.weight") return "lm_head";
  if (target === "token_embd.weight") return "model.embed_tokens";
  const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(target);
  if (!m || !GGUF_TO_HF[m[2]]) return undefined;
  return `model.layers.${m[1]}.${GGUF_TO_HF[m[2]]}`;
}

/** Short module name used in target_modules, e.g. "q_proj" or "lm_head". */
export function shortModule(module: string): string {
  return module.slice(module.lastIndexOf(".") + 1);
}
