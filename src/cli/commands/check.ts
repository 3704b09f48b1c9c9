// lora-edge check: does an adapter fit a base model, and if not, every reason (exit 0 fits, 1 not, 2 usage).
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { openGguf } from "../../gguf/reader.js";
import { checkAdapter } from "../../gguf/adapter.js";

const command: Command = {
  name: "check",
  summary: "does ADAPTER fit the base model: lora-edge check -m BASE ADAPTER [--json]",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { model: { type: "string", short: "m" }, json: { type: "boolean" } },
    });
    if (!values.model || positionals.length !== 1) throw new UsageError("usage: lora-edge check -m BASE.gguf ADAPTER.gguf [--json]");
    const base = openGguf(values.model);
    try {
      const adapter = openGguf(positionals[0]);
      try {
        const r = checkAdapter(base, adapter);
        if (values.json) {
          process.stdout.write(JSON.stringify({ ok: r.ok, problems: r.problems, summary: r.summary }) + "\n");
        } else if (r.ok) {
          const s = r.summary;
          process.stdout.write(`ok: ${adapter.path} fits ${base.path} (rank ${s.ranks.join("/")}, alpha ${s.alpha ?? "-"}, ${s.pairs} pairs on ${s.targets.join(" ")})\n`);
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
  },
};
export default command;
