// Module structure: no import cycles (type-only imports included) among the core, the backends and the GGUF code.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../../src");
const AREAS = ["core", "backends", "gguf"];

/** Relative imports (and re-exports) of every .ts file under the areas, as absolute paths. */
function importGraph(): Map<string, string[]> {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) files.push(p);
    }
  };
  for (const a of AREAS) walk(path.join(SRC, a));
  const g = new Map<string, string[]>();
  for (const f of files) {
    const src = readFileSync(f, "utf8");
    const deps = [...src.matchAll(/(?:import|export)[^"';]*?from\s+"(\.[^"]+)"/g)].map((m) => path.resolve(path.dirname(f), m[1].replace(/\.js$/, ".ts")));
    g.set(f, deps.filter((d) => existsSync(d)));
  }
  return g;
}

/** Every cycle found by a depth-first walk, as a list of files relative to src/. */
function cycles(g: Map<string, string[]>): string[] {
  const state = new Map<string, 1 | 2>(), stack: string[] = [], found: string[] = [];
  const visit = (v: string) => {
    state.set(v, 1);
    stack.push(v);
    for (const w of g.get(v) ?? []) {
      if (state.get(w) === 1) found.push(stack.slice(stack.indexOf(w)).map((p) => path.relative(SRC, p)).join(" -> "));
      else if (!state.has(w)) visit(w);
    }
    stack.pop();
    state.set(v, 2);
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe("module structure", () => {
  test("core, backends and gguf import no module that imports them back", () => {
    const g = importGraph();
    expect(g.size).toBeGreaterThan(30);
    expect(cycles(g)).toEqual([]);
  });

  test("the check finds a cycle when there is one", () => {
    const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]]);
    expect(cycles(g)).toHaveLength(1);
  });
});
