// lora-edge inspect: a GGUF file's header, metadata, tensor table by layer and adapter summary, as text or JSON.
import { EXIT } from "../command.js";
import { defineCommand } from "../spec.js";
import { defaultModelPath } from "../../paths.js";
import { describeGguf, GgufDescription } from "../../gguf/describe.js";
import { openGguf } from "../../gguf/reader.js";

function printText(d: GgufDescription): void {
  const out: string[] = [];
  out.push(`${d.file}`);
  out.push(`  GGUF v${d.version}, ${d.kind}${d.architecture ? `, architecture ${d.architecture}` : ""}, ${d.tensorCount} tensors, ${d.metadata.length} metadata keys, alignment ${d.alignment}, ${d.fileSize} bytes`);
  if (d.hparams) {
    const h = d.hparams;
    out.push(`  n_embd ${h.n_embd}  n_layer ${h.n_layer}  n_head ${h.n_head}  n_head_kv ${h.n_head_kv}  n_ff ${h.n_ff}  n_vocab ${h.n_vocab}  rope ${h.rope_dims}@${h.rope_base}  ctx ${h.context_length}`);
  }
  if (d.adapter) {
    const a = d.adapter;
    out.push(`  adapter: alpha ${a.alpha ?? "(none: scale = user scale)"}, rank ${a.ranks.join("/") || "?"}, ${a.pairs} pairs, targets ${a.targets.join(" ")}, layers ${a.layers.length ? `${a.layers[0]}..${a.layers[a.layers.length - 1]}` : "-"}, ${a.bytes} bytes`);
    out.push(a.aloraInvocationTokens
      ? `  aLoRA: acts from the last occurrence of the invocation tokens [${a.aloraInvocationTokens.join(", ")}] on (before it, the base)`
      : "  plain LoRA: acts on every token (no adapter.alora.invocation_tokens)");
  }
  out.push("", "metadata:");
  for (const m of d.metadata) out.push(`  ${m.key.padEnd(40)} ${m.type.padEnd(8)} ${m.value}`);
  out.push("", "tensors:");
  for (const g of d.groups) {
    out.push(`  ${g.group} (${g.tensors.length} tensors, ${g.bytes} bytes)`);
    for (const t of g.tensors) out.push(`    ${t.name.padEnd(36)} ${t.type.padEnd(7)} [${t.ne.join(", ")}]  ${t.bytes} B @ ${t.offset}`);
  }
  process.stdout.write(out.join("\n") + "\n");
}

export default defineCommand({
  name: "inspect",
  summary: "header, metadata, tensor table and adapter summary of a GGUF file (--json)",
  usage: ["[FILE.gguf] [--json]"],
  options: { json: { kind: "flag", help: "print one JSON object" } },
  positionals: { max: 1 },
  notes: "Without FILE: the embedded default model.",
}, async (values, positionals) => {
  const file = positionals[0] ?? defaultModelPath();
  const g = openGguf(file);
  try {
    const d = describeGguf(g);
    if (values.json) process.stdout.write(JSON.stringify(d) + "\n");
    else printText(d);
  } finally {
    g.close();
  }
  return EXIT.ok;
});
