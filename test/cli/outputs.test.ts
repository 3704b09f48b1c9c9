// Output files of every writing command: inputs and existing files refused, temp files never left, signals handled.
import { createHash } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, runCli, spawnCli } from "../cli-capture.js";
import { fixture, repoRoot, scratchDir } from "../fixtures.js";
import { writeGguf } from "../../src/gguf/writer.js";
import { OutputError } from "../../src/errors.js";
import { synthAdapter, synthModel } from "../../src/tools/synth.js";

const F32 = fixture("models/stories260K.gguf");
const S1 = fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf");
const S2 = fixture("adapters/stories260K-lora-synthetic-r4-s2.gguf");
const PEFT = fixture("peft-stories260K-rslora");

const dir = scratchDir("lora-edge-outputs-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const temps = (d: string) => readdirSync(d).filter((n) => n.endsWith(".tmp"));

/** Every writing command, writing to `out` (a file, or a directory for convert --to peft). */
const WRITERS: [string, (out: string) => string[]][] = [
  ["merge", (o) => ["merge", "-m", F32, "-a", S1, "-o", o]],
  ["mix", (o) => ["mix", S1, S2, "-o", o, "--method", "cat"]],
  ["quantize-adapter", (o) => ["quantize-adapter", S1, "-o", o, "--type", "f16"]],
  ["extract", (o) => ["extract", "--base", F32, "--tuned", fixture("models/stories260K-Q8_0.gguf"), "--rank", "2", "-o", o]],
  ["convert", (o) => ["convert", PEFT, "-m", F32, "-o", o]],
  ["convert --to peft", (o) => ["convert", S1, "--to", "peft", "-m", F32, "-o", o]],
  ["synth", (o) => ["synth", "adapter", "tiny", "-o", o]],
];

describe("outputs", () => {
  it("-o naming an input is refused, with or without --force, by path, symlink or hard link; the input is untouched", async () => {
    const before = sha(F32);
    const link = join(dir, "link.gguf");
    const hard = join(dir, "hard.gguf");
    symlinkSync(F32, link);
    linkSync(S1, hard);
    for (const out of [F32, link]) {
      for (const force of [[], ["--force"]]) {
        const r = await cli("merge", "-m", F32, "-a", S1, "-o", out, ...force);
        expect(r.code).toBe(1);
        expect(r.err).toContain(`cannot write ${out}: it is an input of this job`);
      }
    }
    let r = await cli("mix", S1, S2, "-o", hard, "--force");
    expect(r.err).toContain("it is an input of this job");
    r = await cli("quantize-adapter", S1, "-o", S1, "--type", "f16", "--force");
    expect(r.err).toContain(`cannot write ${S1}: it is an input`);
    r = await cli("convert", PEFT, "-m", F32, "-o", join(PEFT, "adapter_model.safetensors"), "--force");
    expect(r.err).toContain("it is an input of this job");
    r = await cli("extract", "--base", F32, "--tuned", S1, "--rank", "2", "-o", S1, "--force");
    expect(r.err).toContain("it is an input of this job");
    expect(sha(F32)).toBe(before);
    expect(temps(dir)).toEqual([]);
    expect(temps(PEFT)).toEqual([]);
  });

  it("an existing output is refused unless --force, in every command; --force replaces it", async () => {
    for (const [name, args] of WRITERS) {
      const out = join(dir, `existing-${name.replace(/\W+/g, "-")}${name.endsWith("peft") ? "" : ".gguf"}`);
      if (name.endsWith("peft")) { mkdirSync(out); writeFileSync(join(out, "keep.txt"), "x"); } else writeFileSync(out, "old");
      const r = await cli(...args(out));
      expect(r.code, name).toBe(1);
      expect(r.err, name).toContain(`cannot write ${out}: it already exists`);
      const f = await cli(...args(out), "--force");
      expect(f.code, `${name}: ${f.err}`).toBe(0);
      if (name.endsWith("peft")) expect(readdirSync(out).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors", "keep.txt"]);
      else expect(readFileSync(out).subarray(0, 4).toString()).toBe("GGUF");
    }
    expect(temps(dir)).toEqual([]);
  }, 60_000);

  it("a missing directory is refused in every command, naming it; nothing is created", async () => {
    for (const [name, args] of WRITERS) {
      const out = join(dir, "no-such-dir", "x.gguf");
      const r = await cli(...args(out));
      expect(r.code, name).toBe(1);
      expect(r.err, name).toContain(`cannot write ${out}: the directory ${join(dir, "no-such-dir")} does not exist`);
    }
    expect(existsSync(join(dir, "no-such-dir"))).toBe(false);
  });

  it("a 250-byte file name works; a name the file system refuses is reported with the name given, and no temp file stays", async () => {
    const long = join(dir, `${"x".repeat(245)}.gguf`);
    let r = await cli("quantize-adapter", S1, "-o", long, "--type", "q8_0");
    expect(r.code, r.err).toBe(0);
    expect(existsSync(long)).toBe(true);
    const tooLong = join(dir, `${"y".repeat(300)}.gguf`);
    r = await cli("quantize-adapter", S1, "-o", tooLong, "--type", "q8_0");
    expect(r.code).toBe(1);
    expect(r.err).toBe(`lora-edge: cannot write ${tooLong}: name too long (ENAMETOOLONG)\n`);
    r = await cli("merge", "-m", F32, "-a", S1, "-o", dir);
    expect(r.err).toBe(`lora-edge: cannot write ${dir}: it is a directory\n`);
    expect(temps(dir)).toEqual([]);
  });

  it("a writer that fails midway removes its temp file and names the output", () => {
    const out = join(dir, "fails.gguf");
    const input = { kv: [], tensors: [
      { name: "a", type: 0, ne: [4], data: new Uint8Array(16) },
      { name: "b", type: 0, ne: [4], data: () => { throw new Error("no data for b"); } },
    ] };
    expect(() => writeGguf(out, input)).toThrow("no data for b");
    expect(() => writeGguf(out, { kv: [], tensors: [{ name: "a", type: 0, ne: [4], data: new Uint8Array(3) }] })).toThrow(/got 3 bytes/);
    expect(() => writeGguf(join(dir, "nope", "x.gguf"), { kv: [], tensors: [] })).toThrow(OutputError);
    expect(existsSync(out)).toBe(false);
    expect(temps(dir)).toEqual([]);
  });
});

describe("signals", () => {
  let sdir: string;
  let model: string;
  let adapter: string;
  beforeAll(() => {
    sdir = scratchDir("lora-edge-signals-");
    // A 10M-parameter model merged into F32: about 40 MB written tensor by tensor, long enough to interrupt.
    model = synthModel(join(sdir, "m.gguf"), { shape: "stories15m", type: "Q8_0", vocab: 8000 }).path;
    adapter = synthAdapter(join(sdir, "a.gguf"), { shape: "stories15m", rank: 4 }).path;
  });
  afterAll(() => rmSync(sdir, { recursive: true, force: true }));

  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig} during a merge removes the temp file and ends the process by the signal`, async () => {
      const out = join(sdir, `out-${sig}.gguf`);
      const child = spawnCli(["merge", "-m", model, "-a", adapter, "-o", out, "--type", "f32"]);
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on("close", (code, signal) => res({ code, signal })));
      // Wait until the temp file exists (the write has begun), then interrupt.
      const t0 = Date.now();
      while (temps(sdir).length === 0 && Date.now() - t0 < 30_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      expect(temps(sdir).length, err).toBe(1);
      child.kill(sig);
      const { code, signal } = await ended;
      expect(signal, `exit code ${code}; ${err}`).toBe(sig);
      expect(temps(sdir)).toEqual([]);
      expect(existsSync(out)).toBe(false);
    }, 60_000);
  }

  it("a progress bar's hidden cursor is shown again when SIGTERM arrives", async () => {
    // A child that believes stderr is a terminal starts a bar (which hides the cursor), then gets SIGTERM.
    const script = `process.stderr.isTTY = true; process.stderr.columns = 80;
      const { progressBar } = await import(${JSON.stringify(join(repoRoot, "build/src/tools/progress.js"))});
      const bar = progressBar("work", 100, true); bar.tick("x");
      setTimeout(() => process.kill(process.pid, "SIGTERM"), 100); setTimeout(() => {}, 10000);`;
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script]);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const signal = await new Promise((res) => child.on("close", (_c, s) => res(s)));
    expect(signal).toBe("SIGTERM");
    expect(err).toContain("\x1b[?25l");
    expect(err.lastIndexOf("\x1b[?25h")).toBeGreaterThan(err.lastIndexOf("\x1b[?25l"));
  });

  it("--version and a plain run of the built CLI work", async () => {
    const r = await runCli(["--version"]);
    expect(r.out.trim()).toBe(JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version);
  });
});
