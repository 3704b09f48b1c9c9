// lora-edge convert: a PEFT LoRA directory to a llama.cpp adapter GGUF, or (--to peft) a GGUF adapter to PEFT.
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { peftToGguf } from "../../tools/peft/to-gguf.js";
import { ggufToPeft } from "../../tools/peft/from-gguf.js";

export default defineCommand({
  name: "convert",
  summary: "PEFT LoRA dir -> GGUF adapter (-m BASE -o OUT.gguf), or GGUF -> PEFT (--to peft -o DIR)",
  usage: [
    "PEFT_DIR -m BASE.gguf -o OUT.gguf [--outtype auto|f32|f16] [--name NAME] [--force] [--json]",
    "ADAPTER.gguf --to peft -o OUT_DIR [-m BASE.gguf] [--base-model HF_ID] [--force] [--json]",
  ],
  options: {
    model: { kind: "string", short: "m", value: "FILE", help: "the base model GGUF (needed from PEFT; to PEFT, for llama adapters on attn_q/attn_k)" },
    output: { kind: "string", short: "o", value: "PATH", help: "the GGUF file, or with --to peft the directory, to write (required)" },
    to: { kind: "string", value: "FORMAT", choices: ["gguf", "peft"], default: "gguf", help: "the output format" },
    outtype: { kind: "string", value: "T", choices: ["auto", "f32", "f16"], default: "auto", help: "GGUF tensor type; auto keeps F16 when every source tensor is F16 and nothing is rescaled" },
    name: { kind: "string", value: "NAME", help: "general.name of the GGUF adapter" },
    "base-model": { kind: "string", value: "HF_ID", help: "base_model_name_or_path in adapter_config.json" },
    force: { kind: "flag", help: "replace an existing output (never an input)" },
    json: { kind: "flag", help: "print one JSON object" },
  },
  positionals: { min: 1, max: 1 },
  notes: "To PEFT, -m gives the head counts that put llama q/k rows back in Hugging Face's RoPE order.\n" +
    "An aLoRA adapter's invocation tokens are carried both ways (alora_invocation_tokens <-> adapter.alora.invocation_tokens),\n" +
    "each id checked against the base's vocabulary when the base is given.\n" +
    "Outputs are written to a temp file (or directory) beside the target and renamed into place; a missing parent directory is refused.",
}, async (values, positionals) => {
  if (!values.output) throw usage("convert needs an output: -o PATH");
  if (values.to === "peft") {
    const r = await ggufToPeft(positionals[0], values.output, { baseModel: values["base-model"], base: values.model, force: values.force });
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else {
      const pat = Object.keys(r.rankPattern).length + Object.keys(r.alphaPattern).length;
      process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs, r ${r.r}, lora_alpha ${r.loraAlpha}, ${r.dtype}` +
        (pat ? `, ${Object.keys(r.rankPattern).length} rank_pattern / ${Object.keys(r.alphaPattern).length} alpha_pattern entries` : "") +
        (r.aloraInvocationTokens ? `, aLoRA invocation [${r.aloraInvocationTokens.join(", ")}]` : "") + "\n");
    }
    return EXIT.ok;
  }
  if (!values.model) throw usage("converting a PEFT directory needs the base model (-m BASE.gguf)");
  const r = await peftToGguf(positionals[0], values.model, values.output, { outType: values.outtype as "auto" | "f32" | "f16", name: values.name, force: values.force });
  if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
  else {
    process.stdout.write(`wrote ${r.output}: ${r.pairs} pairs for ${r.architecture}, rank ${r.ranks.join("/")}, alpha ${r.alpha}, ${r.types.join("/")}` +
      (r.aloraInvocationTokens ? `, aLoRA invocation [${r.aloraInvocationTokens.join(", ")}]` : "") + "\n");
    if (r.folded.length) process.stdout.write(`  ${r.folded.length} pair(s) scaled into lora_b so that llama.cpp's alpha/r equals PEFT's per-module scale\n`);
  }
  return EXIT.ok;
});
