// The lora-edge command table and dispatcher: picks a command and runs it; no logic of its own.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, EXIT, UsageError, reportError } from "./command.js";
import { packageRoot } from "../paths.js";

/** Every command, loaded only when called so one command's dependencies never slow another. */
const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  inspect: () => import("./commands/inspect.js"),
  demo: () => import("./commands/demo.js"),
  run: () => import("./commands/run.js"),
  chat: () => import("./commands/chat.js"),
  check: () => import("./commands/check.js"),
  devices: () => import("./commands/devices.js"),
  synth: () => import("./commands/synth.js"),
  bench: () => import("./commands/bench.js"),
  convert: () => import("./commands/convert.js"),
  "quantize-adapter": () => import("./commands/quantize-adapter.js"),
  mix: () => import("./commands/mix.js"),
  merge: () => import("./commands/merge.js"),
  extract: () => import("./commands/extract.js"),
  serve: () => import("./commands/serve.js"),
  train: () => import("./commands/train.js"),
};

/** The command run when none is named. */
const DEFAULT_COMMAND = "demo";

/** The package version, from package.json. */
export function version(): string {
  return String((JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version?: unknown }).version);
}

async function help(): Promise<void> {
  const rows = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => [name, (await load()).default.summary]));
  process.stdout.write(`lora-edge ${version()}\nusage: lora-edge <command> [options]   (lora-edge <command> --help for its options; --debug for stack traces)\n\n`);
  for (const [name, summary] of rows) process.stdout.write(`  ${name.padEnd(18)}${summary}\n`);
}

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const args = argv.filter((a) => a !== "--debug");
  const [first, ...rest] = args;
  if (first === "help" || first === "--help" || first === "-h") {
    if (first === "help" && rest[0] && COMMANDS[rest[0]]) return main([rest[0], "--help"]);
    await help();
    return EXIT.ok;
  }
  if (first === "--version" || first === "version") {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const name = first === undefined || first.startsWith("-") ? DEFAULT_COMMAND : first;
  const cmdArgs = name === first ? rest : args;
  const load = COMMANDS[name];
  try {
    if (!load) throw new UsageError(`unknown command "${name}" (lora-edge help lists them)`);
    return await (await load()).default.run(cmdArgs);
  } catch (e) {
    return reportError(e, debug);
  }
}

/** The names of every command (for tests and help). */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

/** A command by name (loaded on demand). */
export async function loadCommand(name: string): Promise<Command> {
  const load = COMMANDS[name];
  if (!load) throw new UsageError(`unknown command "${name}"`);
  return (await load()).default;
}
