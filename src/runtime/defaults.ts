// Where the package's embedded default model and demo adapters live.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The package root: the nearest folder above this module holding the lora-edge package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, "utf8")).name === "lora-edge") return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("lora-edge package root not found");
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
