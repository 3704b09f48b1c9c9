// lora-edge run: load a base and adapters, generate once with a chosen adapter set, print text or JSON.
import { EXIT, UsageError } from "../command.js";
import { defineCommand } from "../spec.js";
import { RUNTIME_OPTIONS, SAMPLING_OPTIONS, openWithAdapters } from "../runtime-flags.js";
import { parseAdapterUse } from "../adapter-args.js";

export default defineCommand({
  name: "run",
  summary: "generate once: lora-edge run -m BASE -a NAME=FILE[:SCALE] -p PROMPT [--use NAME] [--json]",
  usage: ["[-m BASE.gguf] [-a NAME=FILE[:SCALE] ...] -p PROMPT [--use NAME[:SCALE][,NAME[:SCALE]]] [-n N] [--json] [options]"],
  options: {
    ...RUNTIME_OPTIONS,
    prompt: { kind: "string", short: "p", value: "TEXT", help: "the prompt (required)" },
    use: { kind: "string", short: "u", value: "NAME[:SCALE],...", help: "the adapter set; a name without a scale uses its load scale (default: every loaded adapter)" },
    ...SAMPLING_OPTIONS,
    stop: { kind: "string", value: "TEXT", multiple: true, help: "stop when the text contains TEXT" },
    json: { kind: "flag", help: "print one JSON object (text, adapters, tokens, timings)" },
  },
  notes: "The model-load progress bar shows on a terminal (stderr).",
}, async (values) => {
  if (values.prompt === undefined) throw new UsageError("run needs a prompt: -p PROMPT (lora-edge run --help)");
  const gen = {
    maxTokens: values.tokens,
    temperature: values.temperature,
    topK: values["top-k"],
    topP: values["top-p"],
    seed: values.seed,
    stop: values.stop,
  };
  const rt = await openWithAdapters(values, { progress: !values.json });
  try {
    // Without --use every loaded adapter is active at its load scale.
    const set = values.use !== undefined
      ? parseAdapterUse(values.use, (n) => rt.adapters.get(n)?.scale, () => rt.adapters.list().map((a) => a.name))
      : rt.adapters.list().map((a) => a.name);
    const session = rt.session({ adapters: set });
    const g = session.generate(values.prompt, gen);
    if (!values.json) for await (const piece of g) process.stdout.write(piece);
    const r = await g.result;
    if (values.json) {
      const st = rt.stats();
      process.stdout.write(
        JSON.stringify({
          text: r.text,
          prompt: values.prompt,
          adapters: r.adapters,
          loaded: rt.adapters.list().map(({ name, path, scale, alpha, ranks, bytes, loadMs }) => ({ name, path, scale, alpha, ranks, bytes, loadMs })),
          tokens: { prompt: r.promptTokens, generated: r.generatedTokens, ids: r.tokens },
          finishReason: r.finishReason,
          timings: { ...r.timings, modelLoadMs: st.load.totalMs },
          model: st.model,
          backend: st.backend,
          device: st.device,
          threads: st.threads,
        }) + "\n",
      );
    } else process.stdout.write("\n");
    return EXIT.ok;
  } finally {
    await rt.dispose();
  }
});
