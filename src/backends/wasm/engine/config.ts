// Model hyper-parameters for the wasm engine, read from GGUF metadata through a minimal, host-neutral source interface.
import { LoraEdgeError } from "../../../errors.js";

/** A tensor's table entry as the engine needs it (a GGUF reader's tensor info satisfies it). */
export interface TensorEntry {
  readonly name: string;
  /** ggml order: ne[0] is the innermost (row length). */
  readonly ne: readonly number[];
  readonly type: { readonly id: number; readonly name: string };
}

/** Where the engine gets metadata and tensor bytes (a parsed GGUF file satisfies it; no file API needed). */
export interface ModelSource {
  readonly path: string;
  get(key: string): unknown;
  tensor(name: string): TensorEntry | undefined;
  readonly tensors: readonly TensorEntry[];
  readTensor(t: TensorEntry | string): Uint8Array;
}

/** A model or adapter the engine cannot run: names the file and the metadata key or tensor at fault. */
export class EngineConfigError extends LoraEdgeError {
  constructor(readonly file: string, readonly field: string, message: string) {
    super("ENGINE_MODEL", `${file}: ${field}: ${message}`);
  }
}

export interface EngineConfig {
  architecture: string;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  nVocab: number;
  /** Rotary dimensions per head. */
  nRot: number;
  ropeBase: number;
  /** 1 / linear scaling factor. */
  ropeFreqScale: number;
  /** Rotate pairs (i, i + nRot/2) instead of (2i, 2i+1). */
  ropeNeox: boolean;
  rmsEps: number;
  contextLength: number;
}

/** Architectures this engine runs and whether their RoPE is the neox variant. */
const ARCHES: Record<string, { neox: boolean }> = {
  llama: { neox: false },
  mistral: { neox: false },
  smollm: { neox: false },
  qwen2: { neox: true },
};

export function supportedArchitectures(): string[] {
  return Object.keys(ARCHES);
}

function num(src: ModelSource, key: string): number | undefined {
  const v = src.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number")) return Math.max(...(v as number[]));
  throw new EngineConfigError(src.path, key, `expected a number, got ${typeof v}`);
}

function need(src: ModelSource, key: string): number {
  const v = num(src, key);
  if (v === undefined || !Number.isFinite(v)) throw new EngineConfigError(src.path, key, "missing");
  return v;
}

export function readConfig(src: ModelSource): EngineConfig {
  const architecture = src.get("general.architecture");
  if (typeof architecture !== "string") throw new EngineConfigError(src.path, "general.architecture", "missing or not a string");
  const arch = ARCHES[architecture];
  if (!arch) throw new EngineConfigError(src.path, "general.architecture", `unsupported '${architecture}' (supported: ${supportedArchitectures().join(", ")})`);
  const a = architecture;
  const nEmbd = need(src, `${a}.embedding_length`);
  const nHead = need(src, `${a}.attention.head_count`);
  const nHeadKv = num(src, `${a}.attention.head_count_kv`) ?? nHead;
  const headDim = num(src, `${a}.attention.key_length`) ?? nEmbd / nHead;
  const embd = src.tensor("token_embd.weight");
  if (!embd) throw new EngineConfigError(src.path, "token_embd.weight", "tensor missing");
  const scaling = src.get(`${a}.rope.scaling.type`);
  if (scaling !== undefined && scaling !== "none" && scaling !== "linear") {
    throw new EngineConfigError(src.path, `${a}.rope.scaling.type`, `unsupported rope scaling '${String(scaling)}'`);
  }
  const factor = num(src, `${a}.rope.scaling.factor`) ?? num(src, `${a}.rope.scale_linear`) ?? 0;
  const cfg: EngineConfig = {
    architecture,
    nEmbd,
    nLayer: need(src, `${a}.block_count`),
    nHead,
    nHeadKv,
    headDim,
    nFf: need(src, `${a}.feed_forward_length`),
    nVocab: embd.ne[1],
    nRot: num(src, `${a}.rope.dimension_count`) ?? headDim,
    ropeBase: num(src, `${a}.rope.freq_base`) ?? 10000,
    ropeFreqScale: factor === 0 ? 1 : 1 / factor,
    ropeNeox: arch.neox,
    rmsEps: num(src, `${a}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
    contextLength: num(src, `${a}.context_length`) ?? 2048,
  };
  if (!Number.isInteger(cfg.headDim) || cfg.nHead % cfg.nHeadKv !== 0 || cfg.nRot > cfg.headDim || cfg.nRot % 2 !== 0) {
    throw new EngineConfigError(src.path, `${a}.attention`, `inconsistent heads: ${cfg.nHead} heads, ${cfg.nHeadKv} KV heads, head dim ${cfg.headDim}, rope dims ${cfg.nRot}`);
  }
  return cfg;
}
