// Help and version: every command answers --help and -h from its one option spec, and parses every option its help lists.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli, BUILT_CLI } from "../cli-capture.js";
import { repoRoot } from "../fixtures.js";
import { COMMAND_NAMES, loadCommand } from "../../src/cli/app.js";
import { parseCommand, type CommandSpec } from "../../src/cli/spec.js";
import { execFileSync } from "node:child_process";

const load = async (name: string): Promise<CommandSpec> => (await loadCommand(name)).spec!;
const version = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version as string;

describe("help", () => {
  it("every command answers --help and -h (exit 0) with usage and every option of its spec", async () => {
    expect(COMMAND_NAMES.length).toBe(15);
    for (const name of COMMAND_NAMES) {
      const spec = await load(name);
      for (const flag of ["--help", "-h"]) {
        const r = await cli(name, flag);
        expect(r.code, `${name} ${flag}: ${r.err}`).toBe(0);
        expect(r.out.startsWith(`usage: lora-edge ${name}`), name).toBe(true);
        for (const [opt, s] of Object.entries(spec.options)) {
          expect(r.out, `${name} --${opt}`).toContain(`--${opt}`);
          if (s.short) expect(r.out, `${name} -${s.short}`).toContain(`-${s.short}, --${opt}`);
        }
      }
      expect((await cli("help", name)).out).toBe((await cli(name, "--help")).out);
    }
  });

  it("every option in a spec is accepted by the parser, so help and parsing cannot drift", async () => {
    for (const name of COMMAND_NAMES) {
      const spec = await load(name);
      for (const [opt, s] of Object.entries(spec.options)) {
        const value = s.kind === "flag" ? [] : [s.kind === "string" ? (s.choices?.[0] ?? "v") : String(Math.min(s.max ?? Infinity, Math.max(s.min ?? 1, s.kind === "number" && s.above !== undefined ? s.above + 0.5 : 1)))];
        const { values } = parseCommand(spec, [`--${opt}`, ...value, ...Array(spec.positionals?.min ?? 0).fill("p")]);
        expect((values as Record<string, unknown>)[opt], `${name} --${opt}`).toBeDefined();
      }
    }
  });

  it("mix states its default method; an unknown option points to --help with exit 2", async () => {
    expect((await cli("mix", "--help")).out).toMatch(/--method svd\|linear\|cat\s+how the adapters are combined \(default svd\)/);
    const r = await cli("merge", "--bogus");
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option --bogus for lora-edge merge");
    expect(r.err).toContain("lora-edge merge --help");
  });

  it("--version prints the package version", async () => {
    expect((await cli("--version")).out).toBe(`${version}\n`);
    expect((await cli("help")).out).toContain(`lora-edge ${version}`);
  });
});

describe("run on a terminal", () => {
  const hasScript = existsSync("/usr/bin/script");
  if (!hasScript) console.log("skipped: the model-load progress bar test needs util-linux's script(1) for a terminal");
  it.skipIf(!hasScript)("shows the model-load progress bar (stderr on a terminal), and not with --json", () => {
    const run = (extra: string) => execFileSync("/usr/bin/script", ["-qec", `${process.execPath} ${BUILT_CLI} run -p Once -n 2 --gpu off -t 1 ${extra}`, "/dev/null"],
      { encoding: "utf8", env: { ...process.env, COLUMNS: "80", TERM: "xterm" } });
    const out = run("");
    expect(out).toMatch(/loading .*%/);
    expect(out).toContain("\x1b[?25h"); // the cursor is shown again
    expect(run("--json")).not.toMatch(/loading .*%/);
  });
});
