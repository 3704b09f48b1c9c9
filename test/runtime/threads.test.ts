// Threads: requests capped at the usable cores with a notice, the default measured on the loaded model, --threads 1000 runs.
import os from "node:os";
import { describe, expect, it, vi } from "vitest";
import type { NativeBackend } from "../../src/backends/native.js";
import { pickThreads, threadCandidates } from "../../src/backends/native-threads.js";
import { usableCores } from "../../src/devices/index.js";
import { Runtime } from "../../src/runtime/index.js";
import { chooseThreads } from "../../src/runtime/threads.js";
import { cli } from "../cli-capture.js";
import { MODEL } from "./helpers.js";

// Real llama.cpp on shared cores: generous limits (nothing here asserts a time).
vi.setConfig({ testTimeout: 60_000 });

describe("thread requests", () => {
  it("the usable cores are at least 1 and at most the CPUs this process may run on", () => {
    expect(usableCores()).toBeGreaterThanOrEqual(1);
    expect(usableCores()).toBeLessThanOrEqual(os.availableParallelism());
  });

  it("a request within the cores is used as given; more is lowered to the cores, with a notice naming both", () => {
    expect(chooseThreads(2, undefined, 4)).toEqual({ threads: 2, measure: false });
    expect(chooseThreads(4, undefined, 4)).toEqual({ threads: 4, measure: false });
    const capped = chooseThreads(1000, 8, 2);
    expect(capped.threads).toBe(2);
    expect(capped.measure).toBe(false);
    expect(capped.notice).toBe("1000 threads asked for, but this process may use 2 cores: using 2");
    expect(chooseThreads(3, undefined, 1).notice).toMatch(/may use 1 core: using 1$/);
  });

  it("without a request the count is measured, up to the cores or a smaller device plan", () => {
    expect(chooseThreads(undefined, undefined, 4)).toEqual({ threads: 4, measure: true });
    expect(chooseThreads(undefined, 2, 4)).toEqual({ threads: 2, measure: true });
    expect(chooseThreads(undefined, 16, 4)).toEqual({ threads: 4, measure: true });
  });
});

describe("the measured default", () => {
  it("tries 1, the powers of two below the cores, and the cores", () => {
    expect(threadCandidates(1)).toEqual([1]);
    expect(threadCandidates(2)).toEqual([1, 2]);
    expect(threadCandidates(6)).toEqual([1, 2, 4, 6]);
    expect(threadCandidates(8)).toEqual([1, 2, 4, 8]);
  });

  it("picks the fewest threads within 10% of the fastest, never a dropped count", () => {
    const t = (threads: number, msPerToken: number, dropped = false) => ({ threads, msPerToken, tokens: 8, dropped });
    expect(pickThreads([t(1, 4), t(2, 2.1), t(4, 2)])).toBe(2);
    expect(pickThreads([t(1, 4), t(2, 3.9)])).toBe(1);
    expect(pickThreads([t(1, 4), t(2, 2)])).toBe(2);
    expect(pickThreads([t(1, 4), t(2, 0.5, true)])).toBe(1);
  });

  it("Runtime.open without threads times decode steps on the model and keeps the pick", async () => {
    await using rt = await Runtime.open({ model: MODEL, gpu: false, contextSize: 256 });
    expect(rt.threads).toBeGreaterThanOrEqual(1);
    expect(rt.threads).toBeLessThanOrEqual(usableCores());
    expect(rt.notices).toEqual([]);
    const probe = (rt.backend as NativeBackend).threadProbe;
    if (usableCores() === 1) {
      expect(probe).toBeUndefined(); // nothing to choose from
    } else {
      expect(probe!.timings.map((t) => t.threads)).toEqual(threadCandidates(usableCores()));
      for (const t of probe!.timings) expect(t.tokens).toBeGreaterThan(0);
      expect(rt.threads).toBe(pickThreads(probe!.timings));
    }
    const r = await rt.session().generate("Once upon a time", { maxTokens: 4 }).result;
    expect(r.generatedTokens).toBe(4);
  });
});

describe("more threads than cores", () => {
  it("Runtime.open({ threads: 1000 }) uses the usable cores, says so, and generates", async () => {
    await using rt = await Runtime.open({ model: MODEL, gpu: false, threads: 1000, contextSize: 256 });
    expect(rt.threads).toBe(usableCores());
    expect(rt.notices).toEqual([`1000 threads asked for, but this process may use ${usableCores()} core${usableCores() === 1 ? "" : "s"}: using ${usableCores()}`]);
    const r = await rt.session().generate("Once upon a time", { maxTokens: 2 }).result;
    expect(r.generatedTokens).toBe(2);
  });

  it("lora-edge run --threads 1000 prints the notice and finishes", async () => {
    const { code, out, err } = await cli("run", "-m", MODEL, "-p", "Once upon a time", "-n", "2", "--gpu", "off", "--threads", "1000", "--json");
    expect(code).toBe(0);
    expect(err).toContain("lora-edge: 1000 threads asked for");
    expect(JSON.parse(out).threads).toBe(usableCores());
  });
});
