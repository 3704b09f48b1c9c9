// Paths to the shared fixture files that sit beside the repository, and a scratch directory for tests.
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const FIXTURES = resolve(REPO_ROOT, "../shared/fixtures");

/** A fixture by its path relative to the fixtures directory, e.g. "models/stories260K.gguf". */
export function fixture(rel: string): string {
  return join(FIXTURES, rel);
}

/** A fresh temporary directory for one test file. */
export function scratchDir(prefix = "lora-edge-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Every .gguf file among the fixtures. */
export function allFixtureGgufs(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(FIXTURES)) {
    if (!statSync(join(FIXTURES, dir)).isDirectory()) continue;
    for (const f of readdirSync(join(FIXTURES, dir))) if (f.endsWith(".gguf")) out.push(join(FIXTURES, dir, f));
  }
  return out;
}
