// lora-edge extract: a LoRA adapter from the difference of two models (truncated SVD per tensor), with its error.
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { extractAdapter } from "../../tools/extract.js";

export default defineCommand({
  name: "extract",
  summary: "adapter from two models: lora-edge extract --base A --tuned B --rank R -o OUT (reports the error)",
  usage: ["--base A.gguf --tuned B.gguf --rank R -o OUT.gguf [--min-delta X] [--force] [--json]"],
  options: {
    base: { kind: "string", value: "FILE", help: "the base model (required)" },
    tuned: { kind: "string", value: "FILE", help: "the tuned model, same tensor table (required)" },
    rank: { kind: "int", short: "r", min: 1, help: "rank of the adapter (required); capped per tensor at its smaller dimension" },
    output: { kind: "string", short: "o", value: "FILE", help: "the adapter to write (required)" },
    "min-delta": { kind: "number", min: 0, help: "skip tensors whose relative change is below X" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  notes: "The output is written to a temp file beside it and renamed into place; a missing parent directory is refused.",
}, async (values) => {
  if (!values.base || !values.tuned || values.rank === undefined || !values.output) throw usage("extract needs --base, --tuned, --rank and -o");
  const r = await extractAdapter(values.base, values.tuned, values.rank, values.output,
    { progress: !values.json, minRelDelta: values["min-delta"], force: values.force });
  if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
  else {
    process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs at rank ${r.rank} in ${r.seconds.toFixed(2)} s\n`);
    if (r.capped.length) process.stdout.write(`  rank capped at the smaller dimension for ${r.capped.length} tensor(s): ${r.capped.map((c) => `${c.target} (${c.rank})`).join(", ")}\n`);
    process.stdout.write(`  relative error of the extracted delta ${r.relError.toExponential(3)}; of base + adapter against the tuned weights ${r.relErrorOfTuned.toExponential(3)}\n`);
    if (r.uncaptured.length) process.stdout.write(`  ${r.uncaptured.length} changed tensor(s) a LoRA adapter cannot carry: ${r.uncaptured.join(", ")}\n`);
  }
  return EXIT.ok;
});
