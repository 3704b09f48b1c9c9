// lora-edge quantize-adapter: re-encode a GGUF LoRA adapter as f16 or q8_0 (llama.cpp loads either).
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { ADAPTER_TYPES, AdapterTypeName, quantizeAdapter } from "../../tools/quantize-adapter.js";

export default defineCommand({
  name: "quantize-adapter",
  summary: "re-encode a LoRA adapter: lora-edge quantize-adapter IN -o OUT --type f16|q8_0",
  usage: ["IN.gguf -o OUT.gguf --type f16|q8_0|f32 [--force] [--json]"],
  options: {
    output: { kind: "string", short: "o", value: "FILE", help: "the adapter to write (required)" },
    type: { kind: "string", short: "t", value: "T", choices: Object.keys(ADAPTER_TYPES), help: "tensor type (required); q8_0 halves whose rows are not whole blocks stay F16" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  positionals: { min: 1, max: 1 },
  notes: "The output is written to a temp file beside it and renamed into place; a missing parent directory is refused.",
}, async (values, positionals) => {
  if (!values.output || !values.type) throw usage("quantize-adapter needs -o OUT.gguf and --type");
  const r = await quantizeAdapter(positionals[0], values.output, values.type as AdapterTypeName, { force: values.force });
  if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
  else {
    const t = Object.entries(r.types).map(([k, v]) => `${v} ${k}`).join(", ");
    process.stdout.write(`wrote ${r.output}: ${t}; ${r.bytesIn} -> ${r.bytesOut} bytes` +
      (r.fallbacks.length ? ` (${r.fallbacks.length} halves kept F16: rows not a multiple of 32)` : "") + "\n");
  }
  return EXIT.ok;
});
