// lora-edge quantize-adapter: re-encode a GGUF LoRA adapter as f16 or q8_0 (llama.cpp loads either).
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { ADAPTER_TYPES, AdapterTypeName, quantizeAdapter } from "../../tools/quantize-adapter.js";

const USAGE = "usage: lora-edge quantize-adapter IN.gguf -o OUT.gguf --type f16|q8_0|f32 [--json]";

const command: Command = {
  name: "quantize-adapter",
  summary: "re-encode a LoRA adapter: lora-edge quantize-adapter IN -o OUT --type f16|q8_0",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { output: { type: "string", short: "o" }, type: { type: "string", short: "t" }, json: { type: "boolean" } },
    });
    if (positionals.length !== 1 || !values.output || !values.type) throw new UsageError(USAGE);
    const type = values.type.toLowerCase();
    if (!(type in ADAPTER_TYPES)) throw new UsageError(`--type must be one of ${Object.keys(ADAPTER_TYPES).join(", ")}\n${USAGE}`);
    const r = quantizeAdapter(positionals[0], values.output, type as AdapterTypeName);
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else {
      const t = Object.entries(r.types).map(([k, v]) => `${v} ${k}`).join(", ");
      process.stdout.write(`wrote ${r.output}: ${t}; ${r.bytesIn} -> ${r.bytesOut} bytes` +
        (r.fallbacks.length ? ` (${r.fallbacks.length} halves kept F16: rows not a multiple of 32)` : "") + "\n");
    }
    return EXIT.ok;
  },
};
export default command;
