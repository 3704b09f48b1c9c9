// The model configuration the training reference runs: hyper-parameters from the one GGUF hyper-parameter reader, and the architecture check.
import { TrainInputError } from "../../errors.js";
import { modelHparams, type HparamSource, type ModelHparams } from "../../gguf/hparams.js";

export interface ReferenceConfig extends ModelHparams {
  /** RoPE pairs (i, i + ropeDims/2) instead of (2i, 2i+1). */
  readonly ropeNeox: boolean;
}

/** Architectures of the llama family the reference runs, and whether their RoPE is the neox order. */
const ARCHITECTURES: Record<string, { neox: boolean }> = {
  llama: { neox: false },
  mistral: { neox: false },
  smollm: { neox: false },
  qwen2: { neox: true },
};

export function trainableArchitectures(): string[] {
  return Object.keys(ARCHITECTURES);
}

/** A refusal naming the metadata key, and its offset in the file when known. */
function refuse(src: HparamSource, key: string, reason: string): TrainInputError {
  return new TrainInputError(src.path, key, reason, src.kv?.get(key)?.offset ?? -1);
}

/** The hyper-parameters of a model the reference can train on; refuses other architectures, RoPE scalings and inconsistent heads. */
export function referenceConfig(src: HparamSource): ReferenceConfig {
  const name = src.get("general.architecture");
  const arch = typeof name === "string" ? ARCHITECTURES[name] : undefined;
  if (!arch) {
    throw refuse(src, "general.architecture", `unsupported architecture '${String(name)}' (supported: ${trainableArchitectures().join(", ")})`);
  }
  const h = modelHparams(src);
  if (h.ropeScaling !== undefined && h.ropeScaling !== "none" && h.ropeScaling !== "linear") {
    throw refuse(src, `${h.architecture}.rope.scaling.type`, `unsupported RoPE scaling '${h.ropeScaling}'`);
  }
  if (!(h.nFf > 0)) throw refuse(src, `${h.architecture}.feed_forward_length`, "missing");
  if (!(h.nVocab > 0)) throw refuse(src, `${h.architecture}.vocab_size`, "the vocabulary size is unknown");
  if (!Number.isInteger(h.headDim) || h.nHead % h.nHeadKv !== 0 || h.ropeDims > h.headDim || h.ropeDims % 2 !== 0) {
    throw refuse(src, `${h.architecture}.attention.head_count`, `inconsistent heads: ${h.nHead} heads, ${h.nHeadKv} KV heads, head dim ${h.headDim}, RoPE dims ${h.ropeDims}`);
  }
  return { ...h, ropeNeox: arch.neox };
}
