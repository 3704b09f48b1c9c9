// Test helpers: run the lora-edge CLI in-process (capturing stdout and stderr), or the built CLI as a child process.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import { vi } from "vitest";
import { main } from "../src/cli/app.js";
import { repoRoot } from "./fixtures.js";

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => { out += String(s); return true; });
  vi.spyOn(process.stderr, "write").mockImplementation((s) => { err += String(s); return true; });
  try {
    return { code: await main(args), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

/** The built CLI (build/src/cli/main.js; the global setup rebuilds it when src/ is newer). */
export const BUILT_CLI = path.join(repoRoot, "build/src/cli/main.js");

/** Runs the built CLI in a child process. */
export function spawnCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BUILT_CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
}

/** Runs the built CLI to its end: exit code, signal, stdout and stderr. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, out, err }));
    child.stdin.end(opts.input ?? "");
  });
}
