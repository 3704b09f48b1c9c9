// Typed accessors over GGUF metadata: model hyper-parameters and LoRA adapter fields.
import { GgufError } from "./errors.js";
import { GgufFile, GgufValueType } from "./reader.js";

export interface ModelHparams {
  architecture: string;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  nVocab: number;
  /** Rotary dimensions per head. */
  ropeDims: number;
  ropeBase: number;
  contextLength: number;
  rmsEps: number;
  /** Per-head key/value width. */
  headDim: number;
}

export interface AdapterMeta {
  generalType: string | undefined;
  architecture: string | undefined;
  adapterType: string | undefined;
  alpha?: number;
  taskName?: string;
  promptPrefix?: string;
  aloraInvocationTokens?: number[];
}

function str(f: GgufFile, key: string): string | undefined {
  const e = f.kv.get(key);
  if (!e) return undefined;
  if (e.type !== GgufValueType.STRING) throw new GgufError(f.path, key, e.offset, "expected a string");
  return e.value as string;
}

/** A numeric field; per-layer arrays (some models store n_head per layer) give their maximum. */
function num(f: GgufFile, key: string): number | undefined {
  const v = f.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number")) return Math.max(...(v as number[]));
  throw new GgufError(f.path, key, f.kv.get(key)!.offset, "expected a number");
}

function required(f: GgufFile, key: string): number {
  const v = num(f, key);
  if (v === undefined) throw new GgufError(f.path, key, -1, "missing; the model's hyper-parameters cannot be read");
  return v;
}

/** The general.type of a file; when absent, "model" if it names an architecture (as llama.cpp assumes), else "data". */
export function fileKind(f: GgufFile): string {
  return str(f, "general.type") ?? (f.kv.has("general.architecture") ? "model" : "data");
}

/** Hyper-parameters of a model file; throws GgufError naming the first missing key. */
export function modelHparams(f: GgufFile): ModelHparams {
  const architecture = str(f, "general.architecture");
  if (!architecture) throw new GgufError(f.path, "general.architecture", -1, "missing; not a model file");
  const a = architecture;
  const nEmbd = required(f, `${a}.embedding_length`);
  const nHead = required(f, `${a}.attention.head_count`);
  const nHeadKv = num(f, `${a}.attention.head_count_kv`) ?? nHead;
  const headDim = num(f, `${a}.attention.key_length`) ?? (nHead > 0 ? nEmbd / nHead : 0);
  const tokens = f.kv.get("tokenizer.ggml.tokens");
  const embd = f.tensor("token_embd.weight");
  const nVocab = num(f, `${a}.vocab_size`)
    ?? (tokens && tokens.type === GgufValueType.ARRAY ? f.get("tokenizer.ggml.tokens") as unknown[] : undefined)?.length
    ?? (embd && embd.ne.length > 1 ? embd.ne[1] : 0);
  return {
    architecture,
    nEmbd,
    nLayer: required(f, `${a}.block_count`),
    nHead,
    nHeadKv,
    nFf: num(f, `${a}.feed_forward_length`) ?? 0,
    nVocab,
    ropeDims: num(f, `${a}.rope.dimension_count`) ?? headDim,
    ropeBase: num(f, `${a}.rope.freq_base`) ?? 10000,
    contextLength: num(f, `${a}.context_length`) ?? 0,
    rmsEps: num(f, `${a}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
    headDim,
  };
}

/** Adapter fields of a file (all optional: checkAdapter decides what is required). */
export function adapterMeta(f: GgufFile): AdapterMeta {
  const meta: AdapterMeta = {
    generalType: str(f, "general.type"),
    architecture: str(f, "general.architecture"),
    adapterType: str(f, "adapter.type"),
  };
  const alpha = f.kv.get("adapter.lora.alpha");
  if (alpha) {
    if (alpha.type !== GgufValueType.FLOAT32) throw new GgufError(f.path, "adapter.lora.alpha", alpha.offset, "expected f32 (llama.cpp reads it as f32)");
    meta.alpha = alpha.value as number;
  }
  const task = str(f, "adapter.lora.task_name");
  if (task !== undefined) meta.taskName = task;
  const prefix = str(f, "adapter.lora.prompt_prefix");
  if (prefix !== undefined) meta.promptPrefix = prefix;
  const alora = f.kv.get("adapter.alora.invocation_tokens");
  if (alora) {
    const v = f.get("adapter.alora.invocation_tokens");
    const arr = alora.value as { itemType?: GgufValueType };
    if (alora.type !== GgufValueType.ARRAY || arr.itemType !== GgufValueType.UINT32) {
      const got = alora.type === GgufValueType.ARRAY ? `an array of ${GgufValueType[arr.itemType!].toLowerCase()}` : GgufValueType[alora.type].toLowerCase();
      throw new GgufError(f.path, "adapter.alora.invocation_tokens", alora.offset, `expected an array of u32 token ids (llama.cpp refuses any other type), got ${got}`);
    }
    meta.aloraInvocationTokens = v as number[];
  }
  return meta;
}
