// lora-edge bench: per-device latency report (JSON + Markdown + SVG) on a generated real-shape model, or --compare two results.
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { EXIT } from "../command.js";
import { checkOutput, writeText } from "../../output-file.js";
import { defineCommand, usage } from "../spec.js";
import { runBench, type BenchOptions } from "../../device-bench/run.js";
import { validateBenchResult, type BenchResult } from "../../device-bench/schema.js";
import { compareMarkdown, toMarkdown, toSvg } from "../../device-bench/report.js";
import { profilesDir } from "../../devices/profiles.js";
import { PROJECTIONS, shapeById, type ProjectionName, type SynthWeightType } from "../../tools/synth.js";

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

export default defineCommand({
  name: "bench",
  summary: "per-device latency benchmark (load, swap, prefill/decode with and without an adapter): lora-edge bench [--quick]",
  usage: [
    "[--quick] [--shape ID] [--type Q4_0|Q8_0|F16|F32] [--rank R] [--runs N] [--threads N] [--out BASE] [--json] [options]",
    "--compare A.json B.json [--out FILE.md]",
    "--report RESULT.json      (re-writes RESULT.md and RESULT.svg from a result)",
  ],
  options: {
    quick: { kind: "flag", help: "a stories15M-shaped model, few runs, results in the temp folder" },
    shape: { kind: "string", value: "ID", help: "model shape (lora-edge synth shapes; default llama-3.2-1b, with --quick stories15m)" },
    type: { kind: "string", value: "T", choices: ["q4_0", "q8_0", "f16", "f32"], default: "q4_0", help: "weight type of the generated model" },
    vocab: { kind: "int", min: 261, help: "vocabulary size (default: the shape's; 4096 with --quick)" },
    layers: { kind: "int", min: 1, help: "layers (default: the shape's)" },
    rank: { kind: "int", min: 1, default: 16, help: "adapter rank" },
    modules: { kind: "string", value: "LIST", default: "q,k,v,o,gate,up,down", help: "adapted projections" },
    ctx: { kind: "int", min: 64, help: "context size (default 2048; 512 with --quick)" },
    prompt: { kind: "int", min: 2, help: "prompt tokens (default 128; 32 with --quick)" },
    decode: { kind: "int", min: 1, help: "decoded tokens (default 64; 16 with --quick)" },
    runs: { kind: "int", min: 1, help: "runs per figure (default 5; 2 with --quick)" },
    threads: { kind: "int", min: 1, help: "CPU threads (default: the device plan's)" },
    gpu: { kind: "string", value: "API", choices: ["vulkan", "cuda", "metal"], help: "run on this GPU API; vulkan takes a CPU-type device (Mesa's lavapipe) where there is no GPU, and labels the result a software GPU" },
    "models-dir": { kind: "string", value: "DIR", help: "where the generated models are kept (default: the temp folder)" },
    out: { kind: "string", value: "BASE", help: "write BASE.json, BASE.md and BASE.svg (default devices/results/<profile>-<cpu>-<shape>-<type>)" },
    "no-kernels": { kind: "flag", help: "skip the wasm kernel figures" },
    compare: { kind: "flag", help: "compare two result files as Markdown" },
    report: { kind: "string", value: "RESULT.json", help: "re-write RESULT.md and RESULT.svg from a result" },
    force: { kind: "flag", help: "replace existing files named by --out" },
    json: { kind: "flag", help: "print the result as JSON" },
  },
  positionals: { max: 2 },
  notes: "Full run: a Llama-3.2-1B-shaped Q4_0 model with a rank-16 adapter on all 7 projections. Without --out, results go to\n" +
    "the default location and replace an earlier result of the same device, shape and type; files named by --out are\n" +
    "refused when they exist, unless --force. Missing result folders are created.",
}, async (values, positionals, argv) => {
  if (values.compare) {
    if (positionals.length !== 2) throw usage("--compare needs two result files");
    const [a, b] = positionals.map(readResult);
    const md = compareMarkdown(a, b, path.basename(positionals[0], ".json"), path.basename(positionals[1], ".json"));
    if (values.out) writeText(values.out, md, { overwrite: values.force, inputs: positionals });
    process.stdout.write(md);
    return EXIT.ok;
  }
  if (values.report) {
    const r = readResult(values.report);
    const stem = values.report.replace(/\.json$/, "");
    // --report exists to re-write these two files: they are replaced.
    writeText(`${stem}.md`, toMarkdown(r), { overwrite: true, inputs: [values.report] });
    writeText(`${stem}.svg`, toSvg(r), { overwrite: true, inputs: [values.report] });
    process.stdout.write(toMarkdown(r));
    return EXIT.ok;
  }
  if (positionals.length) throw usage(`unexpected argument "${positionals[0]}"`);
  const quick = !!values.quick;
  const shape = values.shape ?? (quick ? "stories15m" : "llama-3.2-1b");
  shapeById(shape);
  const type = values.type.toUpperCase();
  const modules = values.modules.split(",").map((m) => m.trim());
  for (const m of modules) if (!(m in PROJECTIONS)) throw usage(`unknown module "${m}"; known: ${Object.keys(PROJECTIONS).join(",")}`);
  const opts: BenchOptions = {
    shape,
    type: type as SynthWeightType,
    vocab: values.vocab ?? (quick ? 4096 : undefined),
    layers: values.layers,
    rank: values.rank,
    modules: modules as ProjectionName[],
    contextSize: values.ctx ?? (quick ? 512 : 2048),
    promptTokens: values.prompt ?? (quick ? 32 : 128),
    decodeTokens: values.decode ?? (quick ? 16 : 64),
    runs: values.runs ?? (quick ? 2 : 5),
    loadRuns: quick ? 1 : 3,
    threads: values.threads,
    modelsDir: values["models-dir"] ?? path.join(os.tmpdir(), "lora-edge-bench-models"),
    quick,
    command: ["lora-edge", "bench", ...argv].join(" "),
    kernels: values["no-kernels"] ? "none" : "auto",
    ...(values.gpu ? { gpu: values.gpu as BenchOptions["gpu"] } : {}),
    log: (line) => process.stderr.write(`bench: ${line}\n`),
  };
  if (opts.promptTokens >= opts.contextSize - opts.decodeTokens) throw usage("--prompt plus --decode must fit in --ctx");
  // Files named by --out follow the rule of every command (refused when they exist, unless --force); the
  // default location is this device's result, which a new run replaces. Checked before the run starts.
  const explicit = values.out !== undefined;
  const files = (stem: string) => [`${stem}.json`, `${stem}.md`, `${stem}.svg`];
  if (explicit) for (const f of files(values.out!.replace(/\.json$/, ""))) checkOutput(f, { overwrite: values.force });
  const t0 = performance.now();
  const result = await runBench(opts);
  validateBenchResult(result);
  const base = values.out ?? (quick ? path.join(os.tmpdir(), "lora-edge-bench", `${result.profile.name}-quick`)
    : path.join(profilesDir(), "results", `${result.profile.name}-${result.gpu?.software ? `${slug((result.gpu.devices[0] ?? "").split(" (")[0])}-software` : slug(result.facts.cpu.model)}-${shape}-${type.toLowerCase()}`));
  const stem = base.replace(/\.json$/, "");
  if (!explicit) mkdirSync(path.dirname(stem), { recursive: true });
  const o = { overwrite: !explicit || values.force };
  writeText(`${stem}.json`, JSON.stringify(result, null, 1) + "\n", o);
  writeText(`${stem}.md`, toMarkdown(result), o);
  writeText(`${stem}.svg`, toSvg(result), o);
  process.stderr.write(`bench: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; wrote ${stem}.json, .md, .svg\n`);
  process.stdout.write(values.json ? JSON.stringify(result, null, 1) + "\n" : toMarkdown(result));
  return EXIT.ok;
});
