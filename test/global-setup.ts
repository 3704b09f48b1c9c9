// Runs once before the suite: rebuilds build/ (TypeScript, browser bundle) when a source file is newer, for the tests that use built files.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  buildTs();
  buildWeb();
}

/** The browser bundle (build/web/), rebuilt when a source is newer: the browser tests load it. */
function buildWeb(): void {
  const bundle = path.join(root, "build/web/lora-edge.js");
  if (!existsSync(path.join(root, "build/wasm/core-simd.wasm"))) return; // npm run build makes both
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= newest(path.join(root, "src"))) return;
  process.stderr.write("build/web/ is older than src/: rebuilding the browser bundle (scripts/build-web.mjs)\n");
  execFileSync(process.execPath, [path.join(root, "scripts/build-web.mjs")], { cwd: root, stdio: "inherit" });
}

function buildTs(): void {
  const main = path.join(root, "build/src/cli/main.js");
  const sources = Math.max(newest(path.join(root, "src")), newest(path.join(root, "examples")));
  if (existsSync(main) && existsSync(path.join(root, "build/examples/runtime.js")) && statSync(main).mtimeMs >= sources) return;
  process.stderr.write("build/ is older than src/: rebuilding the TypeScript (tsc -p tsconfig.json) for the spawned-CLI tests\n");
  execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: root, stdio: "inherit" });
}
