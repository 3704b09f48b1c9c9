// lora-edge bench: per-device latency report (JSON + Markdown + SVG) on a generated real-shape model, or --compare two results.
import { parseArgs } from "node:util";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, EXIT, UsageError } from "../command.js";
import { runBench, type BenchOptions } from "../../devices/bench/run.js";
import { validateBenchResult, type BenchResult } from "../../devices/bench/schema.js";
import { compareMarkdown, toMarkdown, toSvg } from "../../devices/bench/report.js";
import { profilesDir } from "../../devices/profiles.js";
import { PROJECTIONS, shapeById, type ProjectionName, type SynthWeightType } from "../../tools/synth.js";

const USAGE = `usage: lora-edge bench [--quick] [--shape ID] [--type Q4_0|Q8_0|F16] [--vocab N] [--layers N] [--rank R]
                       [--modules q,k,v,o,gate,up,down] [--ctx N] [--prompt N] [--decode N] [--runs N] [--threads N]
                       [--gpu vulkan|cuda|metal] [--models-dir DIR] [--out BASE] [--no-kernels] [--json]
       lora-edge bench --compare A.json B.json [--out FILE.md]
       lora-edge bench --report RESULT.json      (re-writes RESULT.md and RESULT.svg from a result)
Full run: a Llama-3.2-1B-shaped Q4_0 model with a rank-16 adapter on all 7 projections; writes BASE.json, BASE.md
and BASE.svg (default devices/results/<profile>-<cpu>). --quick: a stories15M-shaped model, few runs, results in the temp folder.
--gpu vulkan: on Vulkan, taking a CPU-type device (Mesa's lavapipe) where there is no GPU; such a result is labelled a software GPU.`;

/** Writes a file atomically (temp file + rename). */
function writeAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function readResult(file: string): BenchResult {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: cannot read a bench result: ${(e as Error).message}`);
  }
  return validateBenchResult(raw, file);
}

const slug = (s: string) => s.toLowerCase().replace(/\(r\)|\(tm\)|processor|cpu|@.*$/g, "").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40);

const command: Command = {
  name: "bench",
  summary: "per-device latency benchmark (load, swap, prefill/decode with and without an adapter): lora-edge bench [--quick]",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        quick: { type: "boolean" }, shape: { type: "string" }, type: { type: "string" }, vocab: { type: "string" },
        layers: { type: "string" }, rank: { type: "string" }, modules: { type: "string" }, ctx: { type: "string" },
        prompt: { type: "string" }, decode: { type: "string" }, runs: { type: "string" }, threads: { type: "string" },
        "models-dir": { type: "string" }, out: { type: "string" }, "no-kernels": { type: "boolean" }, json: { type: "boolean" },
        compare: { type: "boolean" }, report: { type: "string" }, gpu: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) { process.stdout.write(USAGE + "\n"); return EXIT.ok; }
    if (values.compare) {
      if (positionals.length !== 2) throw new UsageError(`--compare needs two result files\n${USAGE}`);
      const [a, b] = positionals.map(readResult);
      const md = compareMarkdown(a, b, path.basename(positionals[0], ".json"), path.basename(positionals[1], ".json"));
      if (values.out) writeAtomic(values.out, md);
      process.stdout.write(md);
      return EXIT.ok;
    }
    if (values.report) {
      const r = readResult(values.report);
      const stem = values.report.replace(/\.json$/, "");
      writeAtomic(`${stem}.md`, toMarkdown(r));
      writeAtomic(`${stem}.svg`, toSvg(r));
      process.stdout.write(toMarkdown(r));
      return EXIT.ok;
    }
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\n${USAGE}`);
    const int = (v: string | undefined, name: string, dflt: number, min = 1) => {
      if (v === undefined) return dflt;
      if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
      return Number(v);
    };
    const quick = !!values.quick;
    const shape = values.shape ?? (quick ? "stories15m" : "llama-3.2-1b");
    shapeById(shape);
    const type = (values.type ?? "Q4_0").toUpperCase();
    if (!["Q4_0", "Q8_0", "F16", "F32"].includes(type)) throw new UsageError(`--type must be Q4_0, Q8_0, F16 or F32, got "${values.type}"`);
    if (values.gpu !== undefined && !["vulkan", "cuda", "metal"].includes(values.gpu)) throw new UsageError(`--gpu must be vulkan, cuda or metal, got "${values.gpu}"`);
    const modules = (values.modules ?? "q,k,v,o,gate,up,down").split(",").map((m) => m.trim());
    for (const m of modules) if (!(m in PROJECTIONS)) throw new UsageError(`unknown module "${m}"; known: ${Object.keys(PROJECTIONS).join(",")}`);
    const opts: BenchOptions = {
      shape,
      type: type as SynthWeightType,
      vocab: values.vocab !== undefined ? int(values.vocab, "vocab", 0, 261) : quick ? 4096 : undefined,
      layers: values.layers !== undefined ? int(values.layers, "layers", 0) : undefined,
      rank: int(values.rank, "rank", 16),
      modules: modules as ProjectionName[],
      contextSize: int(values.ctx, "ctx", quick ? 512 : 2048, 64),
      promptTokens: int(values.prompt, "prompt", quick ? 32 : 128, 2),
      decodeTokens: int(values.decode, "decode", quick ? 16 : 64),
      runs: int(values.runs, "runs", quick ? 2 : 5),
      loadRuns: quick ? 1 : 3,
      threads: values.threads !== undefined ? int(values.threads, "threads", 0) : undefined,
      modelsDir: values["models-dir"] ?? path.join(os.tmpdir(), "lora-edge-bench-models"),
      quick,
      command: ["lora-edge", "bench", ...argv].join(" "),
      kernels: values["no-kernels"] ? "none" : "auto",
      ...(values.gpu ? { gpu: values.gpu as BenchOptions["gpu"] } : {}),
      log: (line) => process.stderr.write(`bench: ${line}\n`),
    };
    if (opts.promptTokens >= opts.contextSize - opts.decodeTokens) throw new UsageError("--prompt plus --decode must fit in --ctx");
    const t0 = performance.now();
    const result = await runBench(opts);
    validateBenchResult(result);
    const base = values.out ?? (quick ? path.join(os.tmpdir(), "lora-edge-bench", `${result.profile.name}-quick`)
      : path.join(profilesDir(), "results", `${result.profile.name}-${result.gpu?.software ? `${slug((result.gpu.devices[0] ?? "").split(" (")[0])}-software` : slug(result.facts.cpu.model)}-${shape}-${type.toLowerCase()}`));
    const stem = base.replace(/\.json$/, "");
    writeAtomic(`${stem}.json`, JSON.stringify(result, null, 1) + "\n");
    writeAtomic(`${stem}.md`, toMarkdown(result));
    writeAtomic(`${stem}.svg`, toSvg(result));
    process.stderr.write(`bench: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; wrote ${stem}.json, .md, .svg\n`);
    process.stdout.write(values.json ? JSON.stringify(result, null, 1) + "\n" : toMarkdown(result));
    return EXIT.ok;
  },
};
export default command;
