// Locations inside the installed package: its root, the embedded default model and the demo adapters.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The package root (holds package.json, gguf/, devices/, build/): the nearest folder above this module whose package.json is lora-edge's. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, "utf8")).name === "lora-edge") return (root = dir);
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("lora-edge: cannot find the package root (no lora-edge package.json above this module)");
    dir = up;
  }
}

/** The embedded default base model (stories260K, MIT). */
export function defaultModelPath(): string {
  return path.join(packageRoot(), "gguf", "stories260K.gguf");
}

/** The two demo adapters shipped beside the default model. */
export function demoAdapterPaths(): { a: string; b: string } {
  const dir = path.join(packageRoot(), "gguf");
  return { a: path.join(dir, "stories260K-demo-a.gguf"), b: path.join(dir, "stories260K-demo-b.gguf") };
}
