// Re-encodes a LoRA adapter GGUF as F16 or Q8_0 (halves whose rows are not whole Q8_0 blocks become F16).
import { statSync } from "node:fs";
import { GgmlType } from "../gguf/ggml-types.js";
import { fixedType, readAdapter, writeAdapter } from "./lora.js";
import { checkOutput } from "../output-file.js";

export const ADAPTER_TYPES = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 } as const;
export type AdapterTypeName = keyof typeof ADAPTER_TYPES;

export interface QuantizeAdapterResult {
  output: string;
  type: AdapterTypeName;
  /** Tensor count per written type, e.g. { Q8_0: 30, F16: 40 }. */
  types: Record<string, number>;
  /** Halves written as F16 because their rows are not a multiple of the block size. */
  fallbacks: string[];
  bytesIn: number;
  bytesOut: number;
}

/** Re-encodes `input` into `output` (an existing output is refused unless `force`; an input never is replaced). */
export function quantizeAdapter(input: string, output: string, type: AdapterTypeName, opts: { force?: boolean } = {}): QuantizeAdapterResult {
  const id = ADAPTER_TYPES[type];
  if (id === undefined) throw new TypeError(`unknown adapter type ${String(type)} (f32, f16, q8_0)`);
  const out = { overwrite: opts.force ?? false, inputs: [input] };
  checkOutput(output, out);
  const ad = readAdapter(input);
  const { types } = writeAdapter(output, ad, fixedType(id), undefined, out);
  const counts: Record<string, number> = {};
  const fallbacks: string[] = [];
  const want = type.toUpperCase();
  for (const [name, t] of Object.entries(types)) {
    counts[t] = (counts[t] ?? 0) + 1;
    if (t !== want) fallbacks.push(name);
  }
  return { output, type, types: counts, fallbacks, bytesIn: statSync(input).size, bytesOut: statSync(output).size };
}
