// Model hyper-parameters from GGUF metadata with one set of defaults: the one reader for the engine, the device plan and the tools (no host API).
import { GgufError } from "./errors.js";

/** What the reader needs (a parsed GGUF file satisfies it). */
export interface HparamSource {
  readonly path: string;
  /** A metadata value by key, as plain JavaScript (arrays as arrays). */
  get(key: string): unknown;
  tensor(name: string): { readonly ne: readonly number[] } | undefined;
  /** Byte offsets of the metadata entries, for errors. */
  readonly kv?: ReadonlyMap<string, { readonly offset: number }>;
}

export interface ModelHparams {
  architecture: string;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** Per-head key/value width. */
  headDim: number;
  /** Feed-forward width; 0 when the file does not say. */
  nFf: number;
  /** vocab_size, else the tokenizer's token count, else token_embd's rows; 0 when none is known. */
  nVocab: number;
  /** Rotary dimensions per head. */
  ropeDims: number;
  ropeBase: number;
  /** rope.scaling.type when the file names one ("none", "linear", "yarn", ...). */
  ropeScaling?: string;
  /** 1 / the linear RoPE scaling factor (1: no scaling). */
  ropeFreqScale: number;
  /** Training context; 0 when the file does not say. */
  contextLength: number;
  rmsEps: number;
}

function offsetOf(src: HparamSource, key: string): number {
  return src.kv?.get(key)?.offset ?? -1;
}

/** A numeric field; per-layer arrays (some models store n_head per layer) give their maximum. */
function num(src: HparamSource, key: string): number | undefined {
  const v = src.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number")) return Math.max(...(v as number[]));
  throw new GgufError(src.path, key, offsetOf(src, key), "expected a number");
}

function required(src: HparamSource, key: string): number {
  const v = num(src, key);
  if (v === undefined || !Number.isFinite(v)) throw new GgufError(src.path, key, offsetOf(src, key), "missing; the model's hyper-parameters cannot be read");
  return v;
}

function str(src: HparamSource, key: string): string | undefined {
  const v = src.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new GgufError(src.path, key, offsetOf(src, key), "expected a string");
  return v;
}

/** Hyper-parameters of a model file; throws GgufError naming the first missing or mistyped key. */
export function modelHparams(src: HparamSource): ModelHparams {
  const a = str(src, "general.architecture");
  if (!a) throw new GgufError(src.path, "general.architecture", -1, "missing; not a model file");
  const nEmbd = required(src, `${a}.embedding_length`);
  const nHead = required(src, `${a}.attention.head_count`);
  const nHeadKv = num(src, `${a}.attention.head_count_kv`) ?? nHead;
  const headDim = num(src, `${a}.attention.key_length`) ?? (nHead > 0 ? nEmbd / nHead : 0);
  const tokens = src.get("tokenizer.ggml.tokens");
  const embd = src.tensor("token_embd.weight");
  const nVocab = num(src, `${a}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : undefined) ?? (embd && embd.ne.length > 1 ? embd.ne[1] : 0);
  const ropeScaling = str(src, `${a}.rope.scaling.type`);
  const factor = num(src, `${a}.rope.scaling.factor`) ?? num(src, `${a}.rope.scale_linear`) ?? 0;
  return {
    architecture: a,
    nEmbd,
    nLayer: required(src, `${a}.block_count`),
    nHead,
    nHeadKv,
    headDim,
    nFf: num(src, `${a}.feed_forward_length`) ?? 0,
    nVocab,
    ropeDims: num(src, `${a}.rope.dimension_count`) ?? headDim,
    ropeBase: num(src, `${a}.rope.freq_base`) ?? 10000,
    ...(ropeScaling !== undefined ? { ropeScaling } : {}),
    ropeFreqScale: factor === 0 ? 1 : 1 / factor,
    contextLength: num(src, `${a}.context_length`) ?? 0,
    rmsEps: num(src, `${a}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
  };
}
