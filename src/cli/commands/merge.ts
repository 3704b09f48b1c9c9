// lora-edge merge: bake LoRA adapters into a base model, re-quantizing (keep, q4_0, q8_0, f16, f32).
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { mergeAdapters, MergeType } from "../../tools/merge.js";
import { parseWeighted } from "./mix.js";

const USAGE = "usage: lora-edge merge -m BASE.gguf -a ADAPTER.gguf[:SCALE] [-a ...] -o OUT.gguf [--type keep|q4_0|q8_0|f16|f32] [--json]";
const TYPES = ["keep", "q4_0", "q8_0", "f16", "f32"];

const command: Command = {
  name: "merge",
  summary: "bake adapters into the base: lora-edge merge -m BASE -a ADAPTER[:SCALE] ... -o OUT --type keep|q4_0|q8_0|f16",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string", short: "m" }, adapter: { type: "string", short: "a", multiple: true },
        output: { type: "string", short: "o" }, type: { type: "string", short: "t" }, json: { type: "boolean" },
      },
    });
    if (!values.model || !values.output || !values.adapter?.length) throw new UsageError(USAGE);
    const type = (values.type ?? "keep").toLowerCase();
    if (!TYPES.includes(type)) throw new UsageError(`--type must be one of ${TYPES.join(", ")}\n${USAGE}`);
    const r = await mergeAdapters(values.model, values.adapter.map((a) => { const w = parseWeighted(a); return { path: w.path, scale: w.weight }; }),
      values.output, type as MergeType, { progress: !values.json });
    if (r.fallbackReason && !values.json) process.stderr.write(`note: wasm core unavailable (${r.fallbackReason}); used the TypeScript kernels\n`);
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else process.stdout.write(`wrote ${r.output}: ${r.merged} tensors merged, ${r.reencoded} re-encoded (${r.type}, ${r.engine} kernels) in ${r.seconds.toFixed(2)} s\n`);
    return EXIT.ok;
  },
};
export default command;
