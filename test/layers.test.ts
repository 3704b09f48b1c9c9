// The layer rule, checked on the real import graph of src/: each module imports only its own layer and the layers below.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./fixtures.js";

/** Lowest first; the README's "Layers" line says the same. */
const LAYERS: readonly (readonly string[])[] = [
  ["errors.ts", "paths.ts", "random.ts", "output-file.ts", "interrupt.ts"], // modules of src/ itself, beneath everything
  ["gguf"],
  ["core", "devices"],
  ["backends", "tools", "train"],
  ["runtime", "device-bench"],
  ["serve", "web"],
  ["cli", "index.ts"],
];

const SRC = path.join(repoRoot, "src");

/** The layer of a file under src/: its first path component (a folder, or a module of src/ itself). */
function layerOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0];
}

function rankOf(layer: string): number {
  return LAYERS.findIndex((l) => l.includes(layer));
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Project files a source file imports (static, type-only, re-exports and dynamic import() with a literal). */
function importsOf(file: string, text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts"));
}

/** Every import that breaks the rule, as "from -> to (layer a imports layer b)". */
function violations(graph: readonly { file: string; imports: readonly string[] }[]): string[] {
  const out: string[] = [];
  for (const { file, imports } of graph) {
    const from = layerOf(file);
    for (const target of imports) {
      const to = layerOf(target);
      if (to === from) continue;
      // the modules of src/ itself (layer 0) may use each other; any other layer only lower ones
      const allowed = rankOf(to) >= 0 && (rankOf(to) < rankOf(from) || (rankOf(to) === 0 && rankOf(from) === 0));
      if (!allowed) {
        out.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)} (${from} imports ${to})`);
      }
    }
  }
  return out;
}

describe("layers", () => {
  const graph = sourceFiles(SRC).map((file) => ({ file, imports: importsOf(file, fs.readFileSync(file, "utf8")) }));

  it("every module of src/ belongs to a layer", () => {
    const unknown = [...new Set(graph.map((g) => layerOf(g.file)))].filter((l) => rankOf(l) < 0);
    expect(unknown).toEqual([]);
  });

  it("every import of src/ goes to the importer's own layer or a lower one", () => {
    expect(graph.length).toBeGreaterThan(100);
    expect(graph.reduce((n, g) => n + g.imports.length, 0)).toBeGreaterThan(300);
    expect(violations(graph)).toEqual([]);
  });

  it("the check sees static, type-only, re-exported and dynamic imports, and reports an upward one", () => {
    const file = path.join(SRC, "gguf", "x.ts");
    const text = [
      `import { a } from "../core/a.js";`,
      `import type { B } from "../devices/b.js";`,
      `export { c } from "../tools/c.js";`,
      `const d = await import("../runtime/d.js");`,
      `import { e } from "./e.js";`,
      `import fs from "node:fs";`,
    ].join("\n");
    const imports = importsOf(file, text);
    expect(imports.map((f) => path.relative(SRC, f))).toEqual(["core/a.ts", "devices/b.ts", "tools/c.ts", "runtime/d.ts", "gguf/e.ts"]);
    expect(violations([{ file, imports }])).toHaveLength(4);
    expect(violations([{ file: path.join(SRC, "cli", "y.ts"), imports }])).toEqual([]);
  });
});
