// Tests the bench on a tiny generated model: the result schema, positive figures, reports and --compare (never timings).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runBench } from "../../src/device-bench/run.js";
import { BENCH_SCHEMA, BenchSchemaError, REQUIRED_SECTIONS, validateBenchResult, type BenchResult } from "../../src/device-bench/schema.js";
import { compareMarkdown, toMarkdown, toSvg } from "../../src/device-bench/report.js";
import { figure } from "../../src/device-bench/stats.js";
import { detectFromFacts } from "../../src/devices/detect.js";
import { gatherFacts, recordedSource, type FactsRecording } from "../../src/devices/facts.js";
import { main } from "../../src/cli/app.js";
import { scratchDir } from "../fixtures.js";

let dir: string;
let result: BenchResult;

beforeAll(async () => {
  dir = scratchDir("bench-");
  const rec = JSON.parse(readFileSync(path.resolve(import.meta.dirname, "../fixtures/facts/x64-xeon-2vcpu-cpu-only.json"), "utf8")) as FactsRecording;
  const detection = detectFromFacts(await gatherFacts(recordedSource(rec)));
  result = await runBench({
    shape: "tiny", type: "Q4_0", rank: 4, modules: ["q", "k", "v", "o", "gate", "up", "down"], contextSize: 128,
    promptTokens: 8, decodeTokens: 4, runs: 2, loadRuns: 1, threads: 1, modelsDir: dir, quick: true,
    command: "lora-edge bench (test)", detection, kernels: "inline",
  });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("bench result", () => {
  it("validates against the schema and has every section", () => {
    expect(() => validateBenchResult(JSON.parse(JSON.stringify(result)))).not.toThrow();
    expect(result.schema).toBe(BENCH_SCHEMA);
    for (const s of REQUIRED_SECTIONS) expect(Object.keys(result.sections[s]).length, s).toBeGreaterThan(0);
    expect(result.sections.kernels).toBeDefined();
    expect(result.profile.name).toBe("generic-x64-cpu");
    expect(result.versions.nodeLlamaCpp).toBe("3.21.1");
    expect(result.settings).toMatchObject({ threads: 1, contextSize: 128, promptTokens: 8, decodeTokens: 4, runs: 2 });
  });

  it("every figure is positive (percentages finite), with min <= median <= max", () => {
    const names = ["load.cold_ms", "load.warm_ms", "context.create_ms", "adapter.load_ms", "swap.live_ms", "swap.new_context_ms",
      "swap.reload_ms", "tokens.prefill_base_tps", "tokens.prefill_adapter_tps", "tokens.decode_base_tps",
      "tokens.decode_adapter_tps", "tokens.decode_overhead_pct", "memory.rss_after_load_mib", "memory.llama_buffers_mib"];
    for (const n of names) {
      const [s, f] = n.split(".");
      expect(result.sections[s][f], n).toBeDefined();
    }
    for (const [sec, figs] of Object.entries(result.sections)) {
      for (const [name, f] of Object.entries(figs)) {
        expect(f.min, `${sec}.${name}`).toBeLessThanOrEqual(f.median);
        expect(f.median).toBeLessThanOrEqual(f.max);
        if (f.unit === "%") expect(Number.isFinite(f.median)).toBe(true);
        else expect(f.min, `${sec}.${name}`).toBeGreaterThan(0);
      }
    }
  });

  it("checks the memory plan against llama.cpp's buffers", () => {
    expect(result.plan).toBeDefined();
    for (const k of ["weights", "adapters", "kvCache", "compute", "total"]) expect(result.plan!.measuredBytes[k], k).toBeGreaterThan(0);
    expect(Math.abs(result.plan!.errorPct.weights)).toBeLessThan(1);
    // A 64-wide toy graph is outside the fitted compute-buffer regime (plan.test.ts holds the tight checks).
    expect(Math.abs(result.plan!.errorPct.total)).toBeLessThan(50);
  });

  it("rejects malformed results naming the field", () => {
    const bad = (mut: (r: any) => void, field: string) => {
      const r = structuredClone(result) as any;
      mut(r);
      let err: unknown;
      try { validateBenchResult(r, "x.json"); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(BenchSchemaError);
      expect((err as BenchSchemaError).field).toBe(field);
    };
    bad((r) => { r.schema = "other"; }, "schema");
    bad((r) => { delete r.sections.swap; }, "sections.swap");
    bad((r) => { r.sections.tokens.decode_base_tps.median = "fast"; }, "sections.tokens.decode_base_tps.median");
    bad((r) => { r.sections.load.warm_ms.min = r.sections.load.warm_ms.max + 1; }, "sections.load.warm_ms");
    bad((r) => { r.settings.runs = 0; }, "settings.runs");
  });

  it("figure() summarises samples", () => {
    expect(figure([3, 1, 2], "ms")).toEqual({ min: 1, median: 2, max: 3, runs: 3, unit: "ms" });
    expect(figure([4, 1, 2, 3], "ms").median).toBe(2.5);
    expect(() => figure([], "ms")).toThrow(RangeError);
  });
});

describe("bench reports", () => {
  it("Markdown table and SVG chart name the figures", () => {
    const md = toMarkdown(result);
    expect(md).toMatch(/\| tokens \| decode_adapter_tps \| [\d.]+ \|/);
    expect(md).toMatch(/\| total \| [\d.]+ MiB \| [\d.]+ MiB \|/);
    const svg = toSvg(result);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("decode + adapter");
    expect(svg).toContain("swap live");
    expect(svg.trim().endsWith("</svg>")).toBe(true);
  });

  it("lora-edge bench --compare shows two results side by side; --report re-renders one", async () => {
    const a = path.join(dir, "a.json");
    const b = path.join(dir, "b.json");
    writeFileSync(a, JSON.stringify(result));
    const other = structuredClone(result);
    other.profile.name = "jetson-orin-nano";
    other.sections.tokens.decode_base_tps = { ...other.sections.tokens.decode_base_tps, median: result.sections.tokens.decode_base_tps.median * 2,
      max: result.sections.tokens.decode_base_tps.max * 2, min: result.sections.tokens.decode_base_tps.min * 2 };
    writeFileSync(b, JSON.stringify(other));
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((s) => { out += String(s); return true; });
    try {
      expect(await main(["bench", "--compare", a, b])).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    expect(out).toContain("generic-x64-cpu vs jetson-orin-nano");
    expect(out).toMatch(/\| tokens \| decode_base_tps \| tok\/s \| [\d.]+ \| [\d.]+ \| 2\.00x \|/);
    expect(compareMarkdown(result, result)).toMatch(/\| swap \| live_ms \| ms \| [\d.]+ \| [\d.]+ \| 1\.00x \|/);
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      expect(await main(["bench", "--report", a])).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    expect(readFileSync(path.join(dir, "a.md"), "utf8")).toContain("| tokens | decode_base_tps |");
    expect(readFileSync(path.join(dir, "a.svg"), "utf8")).toContain("<svg");
    writeFileSync(b, "{}");
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["bench", "--compare", a, b])).toBe(1);
      expect(await main(["bench", "--compare", a])).toBe(2);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
