// Test helper: runs the lora-edge CLI in-process and captures what it writes to stdout and stderr.
import { vi } from "vitest";
import { main } from "../src/cli/app.js";

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
