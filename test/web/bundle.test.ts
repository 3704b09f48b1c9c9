// The lora-edge/web bundle: built by npm run build, ESM with no Node built-in anywhere in it, and its Node twins swapped.
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../fixtures.js";

const WEB = path.join(repoRoot, "build/web");
const BUNDLES = ["lora-edge.js", "engine-worker.js", "demo.js"];

interface Meta {
  inputs: Record<string, { imports: { path: string; external?: boolean }[] }>;
  outputs: Record<string, { imports: { path: string; external?: boolean }[]; entryPoint?: string }>;
}

describe("lora-edge/web bundle", () => {
  const meta = JSON.parse(readFileSync(path.join(WEB, "meta.json"), "utf8")) as Meta;
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

  it("is built, with the wasm builds beside it, and exported as lora-edge/web", () => {
    for (const f of [...BUNDLES, "index.html", "core-simd.wasm", "core-threads.wasm"]) expect(existsSync(path.join(WEB, f)), f).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8"));
    expect(pkg.exports["./web"].import).toBe("./build/web/lora-edge.js");
    expect(pkg.devDependencies.esbuild).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("imports no Node built-in: none among its inputs' imports, none left in its outputs", () => {
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain("src/backends/wasm/host-web.ts");
    expect(inputs).toContain("src/gguf/file-source-web.ts");
    expect(inputs).not.toContain("src/backends/wasm/host-node.ts");
    expect(inputs).not.toContain("src/gguf/file-source.ts");
    expect(inputs).not.toContain("src/core/platform-node.ts");
    const bad = Object.entries(meta.inputs).flatMap(([f, i]) => i.imports.filter((m) => builtins.has(m.path)).map((m) => `${f} -> ${m.path}`));
    expect(bad).toEqual([]);
    for (const [out, o] of Object.entries(meta.outputs)) expect(o.imports, out).toEqual([]);
  });

  it("the output text has no import or require of a Node module, and is ESM", () => {
    for (const f of BUNDLES) {
      const text = readFileSync(path.join(WEB, f), "utf8");
      expect(text, f).not.toMatch(/\bfrom\s*["']node:|\bimport\s*\(\s*["']node:|\brequire\s*\(/);
      expect(text, f).not.toMatch(/\bprocess\.(memoryUsage|env|argv)|\bsetImmediate\(/);
    }
    expect(readFileSync(path.join(WEB, "lora-edge.js"), "utf8")).toMatch(/^export\s*\{/m);
  });

  it("each browser twin exports what its Node module does", async () => {
    const pairs = [
      ["src/gguf/file-source.ts", "src/gguf/file-source-web.ts"],
      ["src/backends/wasm/host-node.ts", "src/backends/wasm/host-web.ts"],
    ];
    for (const [node, web] of pairs) {
      const a = Object.keys(await import(path.join(repoRoot, node))).sort();
      const b = Object.keys(await import(path.join(repoRoot, web))).filter((k) => k !== "setWasmBase").sort();
      expect(b, web).toEqual(a);
    }
  });
});
