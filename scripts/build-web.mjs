// Bundles lora-edge/web (the page module, its engine worker and the demo) into build/web/ with esbuild, next to the wasm builds.
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "web");

/** Node host modules and their browser twins: the only places the web bundle differs from the Node build. */
export const BROWSER_TWINS = {
  "src/gguf/file-source.ts": "src/gguf/file-source-web.ts",
  "src/backends/wasm/host-node.ts": "src/backends/wasm/host-web.ts",
};

const twins = {
  name: "browser-twins",
  setup(b) {
    for (const [node, web] of Object.entries(BROWSER_TWINS)) {
      const file = node.split("/").pop().replace(/\.ts$/, ".js");
      b.onResolve({ filter: new RegExp(`/${file.replace(".", "\\.")}$`) }, (args) => {
        const target = join(args.resolveDir, args.path).replace(/\.js$/, ".ts");
        return target === join(root, node) ? { path: join(root, web) } : undefined;
      });
    }
  },
};

mkdirSync(out, { recursive: true });
const started = Date.now();
const result = await build({
  entryPoints: {
    "lora-edge": join(root, "src/web/index.ts"),
    "engine-worker": join(root, "src/web/engine-worker.ts"),
    demo: join(root, "src/web/demo/demo.ts"),
  },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [twins],
  metafile: true,
});
// what went into the bundle, import by import: the tests check that no Node built-in is among them
writeFileSync(join(out, "meta.json"), JSON.stringify(result.metafile));
copyFileSync(join(root, "src/web/demo/index.html"), join(out, "index.html"));
const wasmDir = join(root, "build", "wasm");
for (const f of readdirSync(wasmDir)) if (f.endsWith(".wasm")) copyFileSync(join(wasmDir, f), join(out, f));
console.log(`build-web: build/web/ (${Date.now() - started} ms)`);
