// Every error class of the project extends LoraEdgeError and carries a stable code.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./fixtures.js";
import * as api from "../src/index.js";
import { LoraEdgeError } from "../src/errors.js";
import { openGguf } from "../src/gguf/reader.js";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("error classes", () => {
  it("every class named *Error in src/ extends LoraEdgeError (directly or through another such class) and passes a code", () => {
    const parents = new Map<string, string>();
    const codes = new Map<string, string[]>();
    for (const f of sources(path.join(repoRoot, "src"))) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/class (\w+Error) extends (\w+)/g)) parents.set(m[1], m[2]);
      for (const m of text.matchAll(/class (\w+Error) extends \w+ \{[\s\S]*?\n\}/g)) codes.set(m[1], [...m[0].matchAll(/super\(\s*("[A-Z_]+"|code,)/g)].map((c) => c[1]));
    }
    expect(parents.size).toBeGreaterThan(15);
    for (const [cls] of parents) {
      let p = cls;
      const chain = [p];
      while (parents.has(p) && p !== "LoraEdgeError") chain.push((p = parents.get(p)!));
      expect(chain.at(-1), `${chain.join(" -> ")}`).toBe("LoraEdgeError");
    }
    // Classes extending LoraEdgeError directly name their code in super("CODE", ...) (or pass their subclass's on).
    for (const [cls, parent] of parents) if (parent === "LoraEdgeError") expect(codes.get(cls)?.length, cls).toBeGreaterThan(0);
  });

  it("the public ones are exported and carry their codes", () => {
    for (const name of ["GgufError", "DoesNotFitError", "AdapterDataError", "OutputError", "SafetensorsError", "UnsupportedAdapterError", "NoProfileError", "ProfileError"]) {
      const cls = (api as Record<string, unknown>)[name] as { prototype: unknown } | undefined;
      expect(cls, name).toBeDefined();
      expect(cls!.prototype instanceof LoraEdgeError, name).toBe(true);
    }
    try {
      openGguf(path.join(repoRoot, "no-such-file.gguf"));
    } catch (e) {
      expect(e).toBeInstanceOf(LoraEdgeError);
      expect(e).toMatchObject({ code: "GGUF", name: "GgufError", field: "file", reason: "no such file" });
    }
  });
});
