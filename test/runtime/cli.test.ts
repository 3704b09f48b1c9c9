// The run, chat and demo commands over the runtime: JSON output, REPL commands, demo adapters as shipped.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import runCommand from "../../src/cli/commands/run.js";
import demoCommand from "../../src/cli/commands/demo.js";
import { chatLoop } from "../../src/cli/commands/chat.js";
import { parseAdapterFlag } from "../../src/cli/adapter-args.js";
import { demoAdapterPaths, defaultModelPath } from "../../src/runtime/index.js";
import { DEMO_ADAPTERS, writeDemoAdapters } from "../../src/tools/demo-adapters.js";
import { repoRoot, scratchDir } from "../fixtures.js";
import { MODEL, S1, S2, openCpu } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });

/** Runs `fn` with process.stdout captured. */
async function captureStdout(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    const code = await fn();
    return { code, out };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe("lora-edge run", () => {
  it("--json prints one object with text, adapters, tokens and timings", async () => {
    const { code, out } = await captureStdout(() =>
      runCommand.run(["-m", MODEL, "-a", `s1=${S1}`, "-a", `s2=${S2}:0.5`, "-p", "Once upon a time", "--use", "s2:0.25,s1", "-n", "8", "--json", "--gpu", "off", "-t", "1"]),
    );
    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines.length).toBe(1);
    const j = JSON.parse(lines[0]);
    expect(typeof j.text).toBe("string");
    expect(j.text.length).toBeGreaterThan(0);
    expect(j.adapters).toEqual({ s1: 1, s2: 0.25 });
    expect(j.tokens.generated).toBe(8);
    expect(j.tokens.prompt).toBe(5);
    expect(j.timings.decodeTokens).toBe(7);
    expect(j.loaded.map((a: { name: string; scale: number }) => [a.name, a.scale])).toEqual([["s1", 1], ["s2", 0.5]]);
  });

  it("--use NAME without a scale takes the scale NAME was loaded with; an unknown name is a usage error", async () => {
    const { code, out } = await captureStdout(() =>
      runCommand.run(["-m", MODEL, "-a", `s1=${S1}`, "-a", `s2=${S2}:0.8`, "-p", "Once", "--use", "s2,s1:0.25", "-n", "2", "--json", "--gpu", "off", "-t", "1"]),
    );
    expect(code).toBe(0);
    expect(JSON.parse(out).adapters).toEqual({ s1: 0.25, s2: 0.8 });
    await expect(runCommand.run(["-m", MODEL, "-a", `s1=${S1}`, "-p", "x", "--use", "nope", "--gpu", "off"])).rejects.toThrow('no adapter named "nope" is loaded (loaded: s1)');
  });

  it("parses NAME=FILE[:SCALE], keeping other colons in the path", () => {
    expect(parseAdapterFlag("a=x.gguf")).toEqual({ name: "a", file: "x.gguf", scale: 1 });
    expect(parseAdapterFlag("a=x.gguf:0.5")).toEqual({ name: "a", file: "x.gguf", scale: 0.5 });
    expect(parseAdapterFlag("a=C:\\m\\x.gguf:-1")).toEqual({ name: "a", file: "C:\\m\\x.gguf", scale: -1 });
    expect(() => parseAdapterFlag("x.gguf")).toThrow(/NAME=FILE/);
  });
});

describe("lora-edge chat", () => {
  it("answers /adapters, /adapter, /stats and text lines, and stops at /quit", async () => {
    const rt = await openCpu();
    try {
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
      const session = rt.session();
      await session.ready();
      const input = new PassThrough();
      const output = new PassThrough();
      let out = "";
      output.on("data", (d) => (out += d.toString()));
      const done = chatLoop(rt, session, { maxTokens: 6, temperature: 0, seed: 0 }, input, output);
      input.end(["/adapters", "/adapter s1:0.5,s2", "Once upon a time", "/adapter nope", "/stats", "/quit", "never read"].join("\n") + "\n");
      await done;
      expect(out).toMatch(/^ {2}s1 /m);
      expect(out).toContain('adapters: {"s1":0.5,"s2":1}');
      expect(out).toMatch(/\[6 tokens, /);
      expect(out).toContain('no adapter named "nope" is loaded');
      expect(out).toMatch(/swaps 1: p50 [\d.]+ ms/);
      expect(session.adapters).toEqual({ s1: 0.5, s2: 1 });
      expect(out).not.toContain("never read");
    } finally {
      await rt.dispose();
    }
  });
});

describe("lora-edge chat: Ctrl-C and /stats", () => {
  it("/stats says \"1 thread\" and \"-\" for what is not measured yet; Ctrl-C stops a generation, a second one quits", async () => {
    const rt = await openCpu();
    try {
      const session = rt.session();
      await session.ready();
      const input = new PassThrough();
      const output = new PassThrough();
      let out = "";
      let interrupt: () => void = () => {};
      let released = false;
      let armed = false;
      output.on("data", (d) => {
        out += d.toString();
        if (armed) { armed = false; interrupt(); } // the first generated piece: Ctrl-C
      });
      const done = chatLoop(rt, session, { maxTokens: 200, temperature: 0, seed: 0 }, input, output, (h) => {
        interrupt = h;
        return () => { released = true; };
      });
      input.write("/stats\n");
      await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/, 1 thread, context /);
      expect(out).toContain("base: prefill - tok/s, decode - tok/s");
      expect(out).not.toContain("0.000");
      armed = true;
      input.write("Once upon a time\n");
      const t0 = Date.now();
      while (!out.includes("[stopped after") && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
      expect(out).toMatch(/\[stopped after \d+ tokens?; Ctrl-C again quits\]/);
      const generated = Number(/\[stopped after (\d+)/.exec(out)![1]);
      expect(generated).toBeLessThan(200);
      interrupt(); // the second Ctrl-C, at the prompt: quit without any more input
      await done;
      expect(released).toBe(true);
      input.end();
    } finally {
      await rt.dispose();
    }
  });
});

describe("demo", () => {
  it("the shipped demo adapters are exactly what the generator writes", () => {
    const dir = scratchDir();
    writeDemoAdapters(dir, defaultModelPath());
    for (const spec of DEMO_ADAPTERS) {
      expect(readFileSync(join(dir, spec.file)).equals(readFileSync(join(repoRoot, "gguf", spec.file))), spec.file).toBe(true);
    }
  });

  it("runs end to end: base, A, swap to B, mix and unload give the expected texts", async () => {
    const paths = demoAdapterPaths();
    const { code, out } = await captureStdout(() => demoCommand.run(["--json", "--gpu", "off", "--swaps", "50", "-n", "32"]));
    expect(code).toBe(0);
    const j = JSON.parse(out.trim());
    expect(Object.keys(j.texts)).toEqual(["base", "adapter A", "swap to B (live)", "mix 0.5 A + 0.5 B", "unload A (keeps B)"]);
    expect(j.texts.base.startsWith(", there was a little girl named Lily")).toBe(true);
    const distinct = new Set([j.texts.base, j.texts["adapter A"], j.texts["swap to B (live)"], j.texts["mix 0.5 A + 0.5 B"]]);
    expect(distinct.size).toBe(4);
    expect(j.texts["unload A (keeps B)"]).toBe(j.texts["swap to B (live)"]);
    expect(j.swaps).toBe(50);
    expect(j.swapP99Ms).toBeGreaterThanOrEqual(j.swapP50Ms);
    expect(paths.a).toContain("stories260K-demo-a.gguf");
  });
});
