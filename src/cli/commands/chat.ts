// lora-edge chat: an interactive prompt over one session; /adapter, /adapters, /stats and /quit.
import readline from "node:readline/promises";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { Command, EXIT } from "../command.js";
import { RUNTIME_FLAGS, intFlag, numFlag, openWithAdapters } from "../runtime-flags.js";
import { parseAdapterSpec, type Runtime, type Session } from "../../runtime/index.js";

const HELP = `commands:
  /adapter NAME[:SCALE][,NAME:SCALE]   use these adapters (swapped live; "/adapter none" for the base)
  /adapters                            list loaded adapters (* = in use)
  /stats                               load, swap and token timings, memory
  /reset                               forget the text so far
  /quit                                leave
anything else is added to the text and the model continues it.
`;

function describeStats(rt: Runtime): string {
  const s = rt.stats();
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 3 : 0) : "-");
  return [
    `model ${s.model} on ${s.backend}/${s.device}${s.profile ? ` (profile ${s.profile})` : ""}, ${s.threads} threads, context ${s.contextSize}, ${s.swapMode} swaps`,
    `load ${f(s.load.totalMs)} ms; adapters: ${s.adapters.map((a) => `${a.name} ${f(a.loadMs)} ms`).join(", ") || "none"}`,
    `swaps ${s.swaps.count}: p50 ${f(s.swaps.p50Ms)} ms, p99 ${f(s.swaps.p99Ms)} ms`,
    `base: prefill ${f(s.tokens.base.prefillTokensPerSecond)} tok/s, decode ${f(s.tokens.base.decodeTokensPerSecond)} tok/s`,
    `with adapters: prefill ${f(s.tokens.adapted.prefillTokensPerSecond)} tok/s, decode ${f(s.tokens.adapted.decodeTokensPerSecond)} tok/s`,
    `memory: rss ${(s.memory.rss / 2 ** 20).toFixed(1)} MiB` + (s.memory.vramUsed !== undefined ? `, vram ${(s.memory.vramUsed / 2 ** 20).toFixed(1)} MiB used` : ""),
  ].join("\n");
}

/** The REPL over `session`, reading lines from `input` until /quit or end of input. */
export async function chatLoop(
  rt: Runtime,
  session: Session,
  gen: { maxTokens: number; temperature: number; seed: number },
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
): Promise<void> {
  const rl = readline.createInterface({ input, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const write = (s: string) => void output.write(s);
  const interactive = (input as { isTTY?: boolean }).isTTY === true;
  let text = "";
  write(`lora-edge chat on ${rt.modelPath}; adapters in use: ${JSON.stringify(session.adapters)}. /help for commands.\n`);
  try {
    for (;;) {
      if (interactive) write("> ");
      const next = await lines.next();
      if (next.done) break;
      const line: string = next.value;
      const cmd = line.trim();
      if (cmd === "/quit" || cmd === "/exit") break;
      if (cmd === "/help") write(HELP);
      else if (cmd === "/adapters") {
        const used = session.adapters;
        for (const a of rt.adapters.list()) {
          write(`${a.name in used ? "*" : " "} ${a.name.padEnd(12)} scale ${used[a.name] ?? a.scale}  rank ${a.ranks.join("/")}  ${(a.bytes / 1024).toFixed(0)} KiB  ${a.path}\n`);
        }
        if (rt.adapters.list().length === 0) write("(no adapters loaded: use -a NAME=FILE)\n");
      } else if (cmd === "/stats") write(describeStats(rt) + "\n");
      else if (cmd === "/reset") {
        text = "";
        await session.reset();
      } else if (cmd.startsWith("/adapter")) {
        const arg = cmd.slice("/adapter".length).trim();
        try {
          const t0 = performance.now();
          await session.setAdapters(arg === "" || arg === "none" ? {} : parseAdapterSpec(arg));
          write(`adapters: ${JSON.stringify(session.adapters)} (${(performance.now() - t0).toFixed(3)} ms; context cleared)\n`);
          text = "";
        } catch (e) {
          write(`${(e as Error).message}\n`);
        }
      } else if (cmd.startsWith("/")) write(`unknown command ${cmd}\n${HELP}`);
      else if (cmd.length > 0) {
        text += (text ? " " : "") + line;
        try {
          const g = session.generate(text, gen);
          for await (const piece of g) write(piece);
          const r = await g.result;
          text += r.text;
          write(`\n[${r.generatedTokens} tokens, ${r.timings.decodeTokensPerSecond.toFixed(0)} tok/s]\n`);
        } catch (e) {
          write(`\n${(e as Error).message} (text reset)\n`);
          text = "";
        }
      }
    }
  } finally {
    rl.close();
  }
}

const command: Command = {
  name: "chat",
  summary: "interactive: lora-edge chat [-m BASE] [-a NAME=FILE[:SCALE] ...]; /adapter, /adapters, /stats, /quit",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { ...RUNTIME_FLAGS, tokens: { type: "string", short: "n" }, temperature: { type: "string" }, seed: { type: "string" } },
    });
    const gen = { maxTokens: intFlag("tokens", values.tokens, 64), temperature: numFlag("temperature", values.temperature, 0), seed: intFlag("seed", values.seed, 0) };
    const bar = new cliProgress.SingleBar({ format: "loading {bar} {percentage}%", hideCursor: true, stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
    bar.start(100, 0);
    let rt: Runtime;
    try {
      rt = await openWithAdapters(values, { onProgress: (p) => bar.update(Math.round(p * 100)) });
      bar.update(100);
    } finally {
      bar.stop();
    }
    const session: Session = rt.session({ adapters: rt.adapters.list().map((a) => a.name) });
    try {
      await session.ready(); // create the context now, so /adapter times only the swap
      await chatLoop(rt, session, gen, process.stdin, process.stdout);
    } finally {
      await rt.dispose();
    }
    return EXIT.ok;
  },
};
export default command;
