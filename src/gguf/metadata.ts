// Typed accessors over GGUF metadata: the file's kind and LoRA adapter fields (model hyper-parameters: hparams.ts).
import { GgufError } from "./errors.js";
import { GgufFile, GgufValueType } from "./reader.js";

export { modelHparams, type ModelHparams } from "./hparams.js";

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

/** The general.type of a file; when absent, "model" if it names an architecture (as llama.cpp assumes), else "data". */
export function fileKind(f: GgufFile): string {
  return str(f, "general.type") ?? (f.kv.has("general.architecture") ? "model" : "data");
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
