// lora-edge convert: a PEFT LoRA directory to a llama.cpp adapter GGUF, or (--to peft) a GGUF adapter to PEFT.
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { peftToGguf } from "../../tools/peft/to-gguf.js";
import { ggufToPeft } from "../../tools/peft/from-gguf.js";

const USAGE = "usage: lora-edge convert PEFT_DIR -m BASE.gguf -o OUT.gguf [--outtype auto|f32|f16] [--name NAME] [--json]\n" +
  "       lora-edge convert ADAPTER.gguf --to peft -o OUT_DIR [-m BASE.gguf] [--base-model HF_ID] [--json]\n" +
  "  (-m is needed for llama adapters on attn_q/attn_k: their rows go back to Hugging Face's RoPE order by head)";

const command: Command = {
  name: "convert",
  summary: "PEFT LoRA dir -> GGUF adapter (-m BASE -o OUT.gguf), or GGUF -> PEFT (--to peft -o DIR)",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        model: { type: "string", short: "m" }, output: { type: "string", short: "o" }, to: { type: "string" },
        outtype: { type: "string" }, name: { type: "string" }, "base-model": { type: "string" }, json: { type: "boolean" },
      },
    });
    if (positionals.length !== 1 || !values.output) throw new UsageError(USAGE);
    const to = values.to ?? "gguf";
    if (to === "peft") {
      const r = ggufToPeft(positionals[0], values.output, { baseModel: values["base-model"], base: values.model });
      if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
      else {
        const pat = Object.keys(r.rankPattern).length + Object.keys(r.alphaPattern).length;
        process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs, r ${r.r}, lora_alpha ${r.loraAlpha}, ${r.dtype}` +
          (pat ? `, ${Object.keys(r.rankPattern).length} rank_pattern / ${Object.keys(r.alphaPattern).length} alpha_pattern entries` : "") + "\n");
      }
      return EXIT.ok;
    }
    if (to !== "gguf") throw new UsageError(`--to must be peft or gguf\n${USAGE}`);
    if (!values.model) throw new UsageError(`converting a PEFT directory needs the base model (-m BASE.gguf)\n${USAGE}`);
    const outType = values.outtype ?? "auto";
    if (outType !== "auto" && outType !== "f32" && outType !== "f16") throw new UsageError(`--outtype must be auto, f32 or f16\n${USAGE}`);
    const r = peftToGguf(positionals[0], values.model, values.output, { outType, name: values.name });
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else {
      process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs for ${r.architecture}, rank ${r.ranks.join("/")}, alpha ${r.alpha}, ${r.types.join("/")}\n`);
      if (r.folded.length) process.stdout.write(`  ${r.folded.length} pair(s) scaled into lora_b so that llama.cpp's alpha/r equals PEFT's per-module scale\n`);
    }
    return EXIT.ok;
  },
};
export default command;
