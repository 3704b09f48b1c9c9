// Test helpers: paths of the fixture files kept in test/fixtures/, and scratch directories.
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = repoRoot;
/** The fixtures directory, inside the repository (see its README for provenance and licences). */
export const FIXTURES = path.resolve(repoRoot, "test/fixtures");
export const fixture = (rel: string): string => path.resolve(FIXTURES, rel);

/** Every .gguf file among the fixtures, recursively, sorted. */
export function allFixtureGgufs(dir = FIXTURES): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allFixtureGgufs(p));
    else if (e.name.endsWith(".gguf")) out.push(p);
  }
  return out.sort();
}

/** A fresh empty directory for a test's outputs. */
export function scratchDir(prefix = "lora-edge-test-"): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}
