// lora-edge run: load a base and adapters, generate once with a chosen adapter set, print text or JSON.
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { RUNTIME_FLAGS, intFlag, numFlag, openWithAdapters } from "../runtime-flags.js";
import { parseAdapterSpec } from "../../runtime/index.js";

const USAGE =
  "usage: lora-edge run [-m BASE.gguf] [-a NAME=FILE[:SCALE] ...] -p PROMPT [--use NAME[:SCALE][,NAME:SCALE]] " +
  "[-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT] [--threads N] [--ctx N] [--gpu auto|off|cuda|vulkan|metal] [--gpu-layers N] [--device auto|PROFILE] [--backend auto|native|wasm] [--adapter-precision f32|q8] [--json]";

const command: Command = {
  name: "run",
  summary: "generate once: lora-edge run -m BASE -a NAME=FILE[:SCALE] -p PROMPT [--use NAME] [--json]",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...RUNTIME_FLAGS,
        prompt: { type: "string", short: "p" },
        use: { type: "string", short: "u" },
        tokens: { type: "string", short: "n" },
        temperature: { type: "string" },
        "top-k": { type: "string" },
        "top-p": { type: "string" },
        seed: { type: "string" },
        stop: { type: "string", multiple: true },
        json: { type: "boolean" },
      },
    });
    if (values.prompt === undefined) throw new UsageError(USAGE);
    const maxTokens = intFlag("tokens", values.tokens, 64);
    const gen = {
      maxTokens,
      temperature: numFlag("temperature", values.temperature, 0),
      topK: intFlag("top-k", values["top-k"], 40),
      topP: numFlag("top-p", values["top-p"], 0.95),
      seed: intFlag("seed", values.seed, 0),
      stop: values.stop,
    };
    const rt = await openWithAdapters(values);
    try {
      // Without --use every loaded adapter is active at its load scale.
      const set = values.use !== undefined ? parseAdapterSpec(values.use) : rt.adapters.list().map((a) => a.name);
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
  },
};
export default command;
