// lora-edge chat: an interactive prompt over one session; /adapter, /adapters, /stats and /quit; Ctrl-C stops a generation.
import readline from "node:readline/promises";
import { EXIT } from "../command.js";
import { defineCommand } from "../spec.js";
import { RUNTIME_OPTIONS, SAMPLING_OPTIONS, openWithAdapters } from "../runtime-flags.js";
import { parseAdapterUse } from "../adapter-args.js";
import type { Runtime, Session } from "../../runtime/index.js";

const HELP = `commands:
  /adapter NAME[:SCALE][,NAME:SCALE]   use these adapters (swapped live; "/adapter none" for the base);
                                       a name without a scale uses its load scale
  /adapters                            list loaded adapters (* = in use)
  /stats                               load, swap and token timings, memory
  /reset                               forget the text so far
  /quit                                leave (so does Ctrl-C when nothing is generating)
anything else is added to the text and the model continues it; Ctrl-C stops a generation.
`;

/** A figure that was measured, or "-" (a rate of 0 means nothing was measured yet). */
const fig = (x: number, digits = 3) => (Number.isFinite(x) && x > 0 ? x.toFixed(x < 10 ? digits : 0) : "-");
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function describeStats(rt: Runtime): string {
  const s = rt.stats();
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 3 : 0) : "-");
  return [
    `model ${s.model} on ${s.backend}/${s.device}${s.profile ? ` (profile ${s.profile})` : ""}, ${plural(s.threads, "thread")}, context ${s.contextSize}, ${s.swapMode} swaps`,
    `load ${ms(s.load.totalMs)} ms; adapters: ${s.adapters.map((a) => `${a.name} ${ms(a.loadMs)} ms`).join(", ") || "none"}`,
    `swaps ${s.swaps.count}: p50 ${ms(s.swaps.p50Ms)} ms, p99 ${ms(s.swaps.p99Ms)} ms`,
    `base: prefill ${fig(s.tokens.base.prefillTokensPerSecond, 1)} tok/s, decode ${fig(s.tokens.base.decodeTokensPerSecond, 1)} tok/s`,
    `with adapters: prefill ${fig(s.tokens.adapted.prefillTokensPerSecond, 1)} tok/s, decode ${fig(s.tokens.adapted.decodeTokensPerSecond, 1)} tok/s`,
    `memory: rss ${(s.memory.rss / 2 ** 20).toFixed(1)} MiB` + (s.memory.vramUsed !== undefined ? `, vram ${(s.memory.vramUsed / 2 ** 20).toFixed(1)} MiB used` : ""),
    "(- : not measured yet)",
  ].join("\n");
}

/** Where Ctrl-C comes from: registers a handler, returns its removal (the process's SIGINT by default). */
export type InterruptSource = (handler: () => void) => () => void;

const sigint: InterruptSource = (handler) => {
  process.on("SIGINT", handler);
  return () => void process.removeListener("SIGINT", handler);
};

/**
 * The REPL over `session`, reading lines from `input` until /quit, end of input, or Ctrl-C when nothing is
 * generating. Ctrl-C during a generation stops it (the text so far is kept); a second Ctrl-C quits.
 */
export async function chatLoop(
  rt: Runtime,
  session: Session,
  gen: { maxTokens: number; temperature: number; seed: number; topK?: number; topP?: number },
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  interrupts: InterruptSource = sigint,
): Promise<void> {
  const rl = readline.createInterface({ input, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const write = (s: string) => void output.write(s);
  const interactive = (input as { isTTY?: boolean }).isTTY === true;
  let text = "";
  let running: AbortController | undefined;
  let quit = false;
  const release = interrupts(() => {
    if (running && !running.signal.aborted) running.abort();
    else {
      quit = true;
      rl.close();
    }
  });
  const loaded = () => rt.adapters.list().map((a) => a.name);
  write(`lora-edge chat on ${rt.modelPath}; adapters in use: ${JSON.stringify(session.adapters)}. /help for commands.\n`);
  try {
    while (!quit) {
      if (interactive) write("> ");
      const next = await lines.next();
      if (next.done || quit) break;
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
      } else if (cmd === "/adapter" || cmd.startsWith("/adapter ")) {
        const arg = cmd.slice("/adapter".length).trim();
        try {
          const t0 = performance.now();
          // between the base and aLoRA sets the conversation stays: its cached states are the base's
          const aloraOnly = () => Object.keys(session.adapters).every((n) => rt.adapters.get(n)?.aloraInvocationTokens !== undefined);
          const wasAlora = aloraOnly();
          await session.setAdapters(arg === "" || arg === "none" ? {} : parseAdapterUse(arg, (n) => rt.adapters.get(n)?.scale, loaded));
          const keep = wasAlora && aloraOnly();
          write(`adapters: ${JSON.stringify(session.adapters)} (${(performance.now() - t0).toFixed(3)} ms; ` +
            `${keep ? "conversation kept: aLoRA adapters act from their invocation on" : "context cleared"})\n`);
          if (!keep) text = "";
        } catch (e) {
          write(`${(e as Error).message}\n`);
        }
      } else if (cmd.startsWith("/")) write(`unknown command ${cmd}\n${HELP}`);
      else if (cmd.length > 0) {
        text += (text ? " " : "") + line;
        running = new AbortController();
        try {
          const g = session.generate(text, { ...gen, signal: running.signal });
          for await (const piece of g) write(piece);
          const r = await g.result;
          text += r.text;
          const rate = fig(r.timings.decodeTokensPerSecond, 1);
          write(r.finishReason === "abort"
            ? `\n[stopped after ${plural(r.generatedTokens, "token")}; Ctrl-C again quits]\n`
            : `\n[${plural(r.generatedTokens, "token")}, ${rate} tok/s]\n`);
        } catch (e) {
          write(`\n${(e as Error).message} (text reset)\n`);
          text = "";
        } finally {
          running = undefined;
        }
      }
    }
  } finally {
    release();
    rl.close();
  }
}

export default defineCommand({
  name: "chat",
  summary: "interactive: lora-edge chat [-m BASE] [-a NAME=FILE[:SCALE] ...]; /adapter, /adapters, /stats, /quit",
  usage: ["[-m BASE.gguf] [-a NAME=FILE[:SCALE] ...] [-n N] [--temperature T] [options]"],
  options: { ...RUNTIME_OPTIONS, ...SAMPLING_OPTIONS },
  notes: HELP + "The model-load progress bar shows on a terminal (stderr).",
}, async (values) => {
  const gen = { maxTokens: values.tokens, temperature: values.temperature, seed: values.seed, topK: values["top-k"], topP: values["top-p"] };
  const rt: Runtime = await openWithAdapters(values, { progress: true });
  const session: Session = rt.session({ adapters: rt.adapters.list().map((a) => a.name) });
  try {
    await session.ready(); // create the context now, so /adapter times only the swap
    await chatLoop(rt, session, gen, process.stdin, process.stdout);
  } finally {
    await rt.dispose();
  }
  return EXIT.ok;
});
