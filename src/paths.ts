// Locations inside the installed package: its root, the shipped GGUF files, the device profiles.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = resolve(dir, "..");
  }
  throw new Error("lora-edge: cannot find the package root");
}

/** The package root (holds package.json, gguf/, devices/, build/). */
export const PACKAGE_ROOT = findRoot();

/** The embedded default model shipped in gguf/. */
export const DEFAULT_MODEL = join(PACKAGE_ROOT, "gguf", "stories260K.gguf");

/** A file shipped in gguf/. */
export function shippedGguf(name: string): string {
  return join(PACKAGE_ROOT, "gguf", name);
}
