// The shape of one CLI command, and the shared handling of usage and input errors.
import { GgufError } from "../gguf/errors.js";
import { LoraEdgeError } from "../errors.js";
import type { CommandSpec } from "./spec.js";

export interface Command {
  name: string;
  /** The option spec its parsing and help come from. */
  spec?: CommandSpec;
  /** One line for the help table. */
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A mistake in how the command was called: exit code 2 (`withUsage`: the command's usage lines follow it). */
export class UsageError extends LoraEdgeError {
  readonly withUsage: boolean;
  constructor(message: string, options: { withUsage?: boolean } = {}) {
    super("USAGE", message);
    this.withUsage = options.withUsage ?? false;
  }
}

/** Exit codes: 0 success, 1 failure or invalid input, 2 usage error. */
export const EXIT = Object.freeze({ ok: 0, fail: 1, usage: 2 });

/** Prints an error as one line (no stack unless --debug) and returns its exit code. */
export function reportError(e: unknown, debug: boolean): number {
  if (debug && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
  const parseArgsError = String((e as { code?: unknown })?.code ?? "").startsWith("ERR_PARSE_ARGS");
  if (e instanceof UsageError || parseArgsError) {
    process.stderr.write(`lora-edge: ${(e as Error).message}\n`);
    return EXIT.usage;
  }
  // A file that cannot be opened at all (missing, a directory, unreadable): "PATH: no such file".
  const input = e as { file?: unknown; field?: unknown; reason?: unknown };
  if (e instanceof LoraEdgeError && input.field === "file" && typeof input.file === "string" && typeof input.reason === "string") {
    process.stderr.write(`lora-edge: ${input.file}: ${input.reason}\n`);
    return EXIT.fail;
  }
  if (e instanceof GgufError) {
    process.stderr.write(`lora-edge: invalid GGUF: ${e.file} (offset ${e.offset}, ${e.field}): ${e.reason}\n`);
    return EXIT.fail;
  }
  process.stderr.write(`lora-edge: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.fail;
}
