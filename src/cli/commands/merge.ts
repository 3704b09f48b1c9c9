// lora-edge merge: bake LoRA adapters into a base model, re-quantizing (keep, q4_0, q8_0, f16, f32).
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { parseFileScale } from "../adapter-args.js";
import { mergeAdapters, MergeType } from "../../tools/merge.js";

export default defineCommand({
  name: "merge",
  summary: "bake adapters into the base: lora-edge merge -m BASE -a ADAPTER[:SCALE] ... -o OUT --type keep|q4_0|q8_0|f16",
  usage: ["-m BASE.gguf -a ADAPTER.gguf[:SCALE] [-a ...] -o OUT.gguf [--type keep|q4_0|q8_0|f16|f32] [--force] [--json]"],
  options: {
    model: { kind: "string", short: "m", value: "FILE", help: "the base model (required)" },
    adapter: { kind: "string", short: "a", value: "FILE[:SCALE]", multiple: true, help: "an adapter and its scale (default 1; from -100 to 100)" },
    output: { kind: "string", short: "o", value: "FILE", help: "the merged model to write (required)" },
    type: { kind: "string", short: "t", value: "T", choices: ["keep", "q4_0", "q8_0", "f16", "f32"], default: "keep", help: "tensor type of the re-encoded weights; keep re-encodes merged tensors in their own type" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  notes: "W + scale * alpha/r * B A per adapted weight, one tensor at a time. The output is written to a temp file beside it and\n" +
    "renamed into place; a missing parent directory is refused. aLoRA adapters are refused: merged weights act on every token,\n" +
    "so a merge cannot keep activation.",
}, async (values) => {
  if (!values.model || !values.output || !values.adapter?.length) throw usage("merge needs -m BASE, at least one -a ADAPTER and -o OUT");
  const r = await mergeAdapters(values.model, values.adapter.map(parseFileScale), values.output, values.type as MergeType,
    { progress: !values.json, force: values.force });
  if (r.fallbackReason && !values.json) process.stderr.write(`note: wasm core unavailable (${r.fallbackReason}); used the TypeScript kernels\n`);
  if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
  else process.stdout.write(`wrote ${r.output}: ${r.merged} tensors merged, ${r.reencoded} re-encoded (${r.type}, ${r.engine} kernels) in ${r.seconds.toFixed(2)} s\n`);
  return EXIT.ok;
});
