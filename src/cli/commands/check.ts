// lora-edge check: does an adapter fit a base model, and if not, every reason (exit 0 fits, 1 not, 2 usage).
import { EXIT, UsageError } from "../command.js";
import { defineCommand } from "../spec.js";
import { openGguf } from "../../gguf/reader.js";
import { checkAdapter } from "../../gguf/adapter.js";

export default defineCommand({
  name: "check",
  summary: "does ADAPTER fit the base model: lora-edge check -m BASE ADAPTER [--json]",
  usage: ["-m BASE.gguf ADAPTER.gguf [--json]"],
  options: {
    model: { kind: "string", short: "m", value: "FILE", help: "the base model (required)" },
    json: { kind: "flag", help: "print one JSON object: ok, problems, summary" },
  },
  positionals: { min: 1, max: 1 },
  notes: "Exit 0: the adapter fits; 1: it does not, or a file is invalid (every problem is listed); 2: usage error.",
}, async (values, positionals) => {
  if (!values.model) throw new UsageError("check needs the base model: -m BASE.gguf (lora-edge check --help)");
  const base = openGguf(values.model);
  try {
    const adapter = openGguf(positionals[0]);
    try {
      const r = checkAdapter(base, adapter);
      if (values.json) {
        process.stdout.write(JSON.stringify({ ok: r.ok, problems: r.problems, summary: r.summary }) + "\n");
      } else if (r.ok) {
        const s = r.summary;
        const alora = s.aloraInvocationTokens ? `, aLoRA invocation [${s.aloraInvocationTokens.join(", ")}]` : "";
        process.stdout.write(`ok: ${adapter.path} fits ${base.path} (rank ${s.ranks.join("/")}, alpha ${s.alpha ?? "-"}, ${s.pairs} pairs on ${s.targets.join(" ")}${alora})\n`);
      } else {
        process.stdout.write(`does not fit: ${r.problems.length} problem(s)\n`);
        for (const p of r.problems) process.stdout.write(`  ${p.tensor}: ${p.message}\n`);
      }
      return r.ok ? EXIT.ok : EXIT.fail;
    } finally {
      adapter.close();
    }
  } finally {
    base.close();
  }
});
