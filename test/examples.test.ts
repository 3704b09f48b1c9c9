// The README's Runtime API examples run as written: examples/runtime.mjs and examples/runtime.ts, quoted verbatim.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./fixtures.js";

const run = promisify(execFile);
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

describe("README examples", () => {
  it("the README quotes both files verbatim", () => {
    const mjs = readFileSync(join(repoRoot, "examples/runtime.mjs"), "utf8");
    const ts = readFileSync(join(repoRoot, "examples/runtime.ts"), "utf8");
    expect(readme).toContain("```js\n" + mjs + "```");
    expect(readme).toContain("```ts\n" + ts + "```");
    expect(mjs).not.toContain("await using"); // a SyntaxError on Node 20
    expect(readme).toMatch(/ES module package only/);
  });

  it("examples/runtime.mjs runs on this Node as written (it imports the package by its name)", async () => {
    const { stdout } = await run(process.execPath, [join(repoRoot, "examples/runtime.mjs")], { cwd: repoRoot, timeout: 60_000 });
    expect(stdout).toMatch(/^, there was a little girl named Lily/);
    expect(stdout).toContain("[32 tokens, length]");
    expect(stdout).toMatch(/live: 2/);
  }, 60_000);

  it("examples/runtime.ts, compiled by the project's tsconfig, runs too", async () => {
    const { stdout } = await run(process.execPath, [join(repoRoot, "build/examples/runtime.js")], { cwd: repoRoot, timeout: 60_000 });
    expect(stdout).toMatch(/\[32 tokens with \{"a":1,"b":0\.5\}\]/);
  }, 60_000);
});
