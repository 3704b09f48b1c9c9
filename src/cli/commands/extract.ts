// lora-edge extract: a LoRA adapter from the difference of two models (truncated SVD per tensor), with its error.
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { extractAdapter } from "../../tools/extract.js";

const USAGE = "usage: lora-edge extract --base A.gguf --tuned B.gguf --rank R -o OUT.gguf [--min-delta X] [--json]";

const command: Command = {
  name: "extract",
  summary: "adapter from two models: lora-edge extract --base A --tuned B --rank R -o OUT (reports the error)",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        base: { type: "string" }, tuned: { type: "string" }, rank: { type: "string", short: "r" },
        output: { type: "string", short: "o" }, "min-delta": { type: "string" }, json: { type: "boolean" },
      },
    });
    if (!values.base || !values.tuned || !values.rank || !values.output) throw new UsageError(USAGE);
    const rank = Number(values.rank);
    if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`--rank must be a positive integer\n${USAGE}`);
    const minRelDelta = values["min-delta"] !== undefined ? Number(values["min-delta"]) : undefined;
    const r = await extractAdapter(values.base, values.tuned, rank, values.output, { progress: !values.json, minRelDelta });
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else {
      process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs at rank ${r.rank} in ${r.seconds.toFixed(2)} s\n`);
      process.stdout.write(`  relative error of the extracted delta ${r.relError.toExponential(3)}; of base + adapter against the tuned weights ${r.relErrorOfTuned.toExponential(3)}\n`);
      if (r.uncaptured.length) process.stdout.write(`  ${r.uncaptured.length} changed tensor(s) a LoRA adapter cannot carry: ${r.uncaptured.join(", ")}\n`);
    }
    return EXIT.ok;
  },
};
export default command;
