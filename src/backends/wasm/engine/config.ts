// What the engine reads models from (a host-neutral source interface) and the model configuration it runs: hyper-parameters from gguf/hparams.ts, architecture checks.
import { LoraEdgeError } from "../../../errors.js";
import { modelHparams, type ModelHparams } from "../../../gguf/hparams.js";

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

/** The model's hyper-parameters (read by the one GGUF reader of them) and what the engine derives. */
export interface EngineConfig extends ModelHparams {
  /** Rotate pairs (i, i + ropeDims/2) instead of (2i, 2i+1). */
  ropeNeox: boolean;
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

/** The hyper-parameters of a model the engine can run; refuses architectures, RoPE scalings and shapes it cannot. */
export function readConfig(src: ModelSource): EngineConfig {
  const h = modelHparams(src);
  const a = h.architecture;
  const arch = ARCHES[a];
  if (!arch) throw new EngineConfigError(src.path, "general.architecture", `unsupported '${a}' (supported: ${supportedArchitectures().join(", ")})`);
  if (!src.tensor("token_embd.weight")) throw new EngineConfigError(src.path, "token_embd.weight", "tensor missing");
  if (h.ropeScaling !== undefined && h.ropeScaling !== "none" && h.ropeScaling !== "linear") {
    throw new EngineConfigError(src.path, `${a}.rope.scaling.type`, `unsupported rope scaling '${h.ropeScaling}'`);
  }
  if (!(h.nFf > 0)) throw new EngineConfigError(src.path, `${a}.feed_forward_length`, "missing");
  if (!Number.isInteger(h.headDim) || h.nHead % h.nHeadKv !== 0 || h.ropeDims > h.headDim || h.ropeDims % 2 !== 0) {
    throw new EngineConfigError(src.path, `${a}.attention`, `inconsistent heads: ${h.nHead} heads, ${h.nHeadKv} KV heads, head dim ${h.headDim}, rope dims ${h.ropeDims}`);
  }
  return { ...h, ropeNeox: arch.neox };
}
