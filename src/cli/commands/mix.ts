// lora-edge mix: combine LoRA adapters A[:w] B[:w] ... into one (linear, cat or svd, as PEFT's add_weighted_adapter).
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { parseFileScale } from "../adapter-args.js";
import { MixMethod, mixAdapters } from "../../tools/mix.js";

export default defineCommand({
  name: "mix",
  summary: "combine adapters: lora-edge mix A[:w] B[:w] ... -o OUT [--method svd|linear|cat] [--rank R] (default svd)",
  usage: ["A.gguf[:W] B.gguf[:W] ... -o OUT.gguf [--method svd|linear|cat] [--rank R] [--force] [--json]"],
  options: {
    output: { kind: "string", short: "o", value: "FILE", help: "the mixed adapter to write (required)" },
    method: { kind: "string", value: "M", choices: ["svd", "linear", "cat"], default: "svd", help: "how the adapters are combined" },
    rank: { kind: "int", short: "r", min: 1, help: "rank of the svd mix (default: the largest input rank)" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  positionals: { min: 1, max: Infinity },
  notes: `Each input is FILE[:W] (weight W from -100 to 100, default 1). Methods, as PEFT's add_weighted_adapter:
  svd (default)  the best rank-R approximation of the weighted sum of the deltas
  linear         A and B summed with sqrt(W * scale) each (equal ranks, W * scale >= 0; PEFT's cross terms kept)
  cat            A and B concatenated: the exact weighted sum, rank = the sum of the ranks
aLoRA adapters are refused: each acts only from its own invocation sequence on, which a mix cannot keep.
The output is written to a temp file beside it and renamed into place; a missing parent directory is refused.`,
}, async (values, positionals) => {
  if (!values.output) throw usage("mix needs an output: -o OUT.gguf");
  const method = values.method as MixMethod;
  if (values.rank !== undefined && method !== "svd") throw usage("--rank applies to --method svd only");
  const inputs = positionals.map((p) => { const f = parseFileScale(p); return { path: f.path, weight: f.scale }; });
  const r = await mixAdapters(inputs, values.output, method, values.rank, { progress: !values.json, force: values.force });
  if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
  else process.stdout.write(`wrote ${r.output}: ${r.method} mix of ${r.inputs.length} adapter(s), ${r.pairs} pairs, rank ${r.rank}, alpha ${r.alpha}\n`);
  return EXIT.ok;
});
