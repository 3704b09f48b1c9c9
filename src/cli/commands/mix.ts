// lora-edge mix: combine LoRA adapters A[:w] B[:w] ... into one (linear, cat or svd, as PEFT's add_weighted_adapter).
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { MixMethod, mixAdapters } from "../../tools/mix.js";

const USAGE = "usage: lora-edge mix A.gguf[:W] B.gguf[:W] ... -o OUT.gguf [--method linear|cat|svd] [--rank R] [--json]";

/** "path:weight" -> { path, weight }; a suffix that is not a number belongs to the path. */
export function parseWeighted(arg: string, defaultWeight = 1): { path: string; weight: number } {
  const i = arg.lastIndexOf(":");
  if (i > 0) {
    const w = Number(arg.slice(i + 1));
    if (arg.slice(i + 1).trim() !== "" && Number.isFinite(w)) return { path: arg.slice(0, i), weight: w };
  }
  return { path: arg, weight: defaultWeight };
}

const command: Command = {
  name: "mix",
  summary: "combine adapters: lora-edge mix A[:w] B[:w] ... -o OUT --method linear|cat|svd [--rank R]",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { output: { type: "string", short: "o" }, method: { type: "string" }, rank: { type: "string", short: "r" }, json: { type: "boolean" } },
    });
    if (positionals.length === 0 || !values.output) throw new UsageError(USAGE);
    const method = (values.method ?? "svd") as MixMethod;
    if (!["linear", "cat", "svd"].includes(method)) throw new UsageError(`--method must be linear, cat or svd\n${USAGE}`);
    let rank: number | undefined;
    if (values.rank !== undefined) {
      rank = Number(values.rank);
      if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`--rank must be a positive integer\n${USAGE}`);
      if (method !== "svd") throw new UsageError("--rank applies to --method svd only");
    }
    const r = mixAdapters(positionals.map((p) => parseWeighted(p)), values.output, method, rank, !values.json);
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else process.stdout.write(`wrote ${r.output}: ${r.method} mix of ${r.inputs.length} adapter(s), ${r.pairs} pairs, rank ${r.rank}, alpha ${r.alpha}\n`);
    return EXIT.ok;
  },
};
export default command;
