// Merge benchmark: a rank-16 adapter on all seven projections baked into a generated Llama-3.2-1B-shaped Q4_0 model; time and peak RSS.
import { fork } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthAdapter, synthModel } from "../src/tools/synth.js";
import { mergeAdapters, type MergeType } from "../src/tools/merge.js";
import { parameterCount } from "./models.js";
import { peakRssMiB } from "./peak-rss.js";

interface ChildReport {
  seconds: number;
  maxRssMiB: number;
  engine: string;
  peakTensorMiB: number;
  merged: number;
  reencoded: number;
}

/** Child mode: one merge, then its own peak resident memory (the parent's model generation is not counted). */
async function child(args: string[]): Promise<void> {
  const [base, adapter, out, type, engine] = args;
  // "-" as the adapter: no adapter, a plain streamed copy (the I/O floor of a merge).
  const adapters = adapter === "-" ? [] : [{ path: adapter, scale: 1 }];
  const r = await mergeAdapters(base, adapters, out, type as MergeType, { engine: engine as "auto" | "wasm" | "ts" });
  const report: ChildReport = {
    seconds: r.seconds, maxRssMiB: peakRssMiB(), engine: r.engine,
    peakTensorMiB: r.peakTensorBytes / 2 ** 20, merged: r.merged, reencoded: r.reencoded,
  };
  process.send!(report);
}

function runChild(args: string[]): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ["--child", ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let got: ChildReport | undefined;
    c.on("message", (m) => { got = m as ChildReport; });
    c.on("exit", (code) => (got ? resolve(got) : reject(new Error(`merge child exited with ${code}`))));
  });
}

/** Peak RSS of a child that only starts Node and loads the merge module (the floor under every figure). */
function idleChild(): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ["--idle"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    c.on("message", (m) => resolve(m as number));
    c.on("exit", (code) => (code ? reject(new Error(`idle child exited with ${code}`)) : undefined));
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") return child(argv.slice(1));
  if (argv[0] === "--idle") { process.send!(peakRssMiB()); return; }
  const { values } = parseArgs({
    args: argv,
    options: {
      vocab: { type: "string", default: "32000" }, layers: { type: "string" }, rank: { type: "string", default: "16" },
      type: { type: "string", default: "keep" }, engine: { type: "string", default: "auto" }, runs: { type: "string", default: "3" },
      dir: { type: "string" }, json: { type: "boolean" },
    },
  });
  const dir = values.dir ?? mkdtempSync(path.join(tmpdir(), "lora-edge-bench-merge-"));
  const base = path.join(dir, "base-q4_0.gguf");
  const adapter = path.join(dir, "adapter-r16.gguf");
  const out = path.join(dir, "merged.gguf");
  try {
    const t0 = performance.now();
    // with --dir the generated files are kept and reused (the same options give the same files)
    const reuse = values.dir !== undefined && existsSync(base) && existsSync(adapter);
    const m = reuse
      ? { parameters: parameterCount(base) }
      : synthModel(base, { shape: "llama-3.2-1b", type: "Q4_0", vocab: Number(values.vocab), layers: values.layers ? Number(values.layers) : undefined });
    const genSeconds = (performance.now() - t0) / 1000;
    if (!reuse) synthAdapter(adapter, { shape: "llama-3.2-1b", rank: Number(values.rank), layers: values.layers ? Number(values.layers) : undefined });
    const idle = await idleChild();
    // Interleaved with plain copies of the model (no adapter), which measure the read/write floor on this disk.
    const runs: ChildReport[] = [];
    const copies: ChildReport[] = [];
    for (let i = 0; i < Number(values.runs); i++) {
      // each run writes a fresh output (a merge refuses to replace an existing file)
      rmSync(out, { force: true });
      copies.push(await runChild([base, "-", out, "keep", values.engine!]));
      rmSync(out, { force: true });
      runs.push(await runChild([base, adapter, out, values.type!, values.engine!]));
    }
    const med = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const h = Math.floor(s.length / 2);
      return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
    };
    const result = {
      model: { path: base, bytes: statSync(base).size, parameters: m.parameters, generateSeconds: genSeconds },
      adapter: { bytes: statSync(adapter).size, rank: Number(values.rank) },
      type: values.type, engine: runs[0].engine,
      mergeSeconds: runs.map((r) => r.seconds), medianSeconds: med(runs.map((r) => r.seconds)),
      copySeconds: copies.map((r) => r.seconds), medianCopySeconds: med(copies.map((r) => r.seconds)),
      peakRssMiB: runs.map((r) => r.maxRssMiB), idleNodeRssMiB: idle, largestTensorF32MiB: runs[0].peakTensorMiB,
      tensorsMerged: runs[0].merged, outputBytes: statSync(out).size,
    };
    // the goals: at most 8.8 s median (twice as fast as llama.cpp's export-lora then quantize) in at most 400 MB
    const peakMB = Math.max(...runs.map((r) => r.maxRssMiB)) * 2 ** 20 / 1e6;
    const targets = {
      mergeMedianSeconds: { value: Math.round(result.medianSeconds * 100) / 100, goal: 8.8, met: result.medianSeconds <= 8.8 },
      mergePeakRssMB: { value: Math.round(peakMB), goal: 400, met: peakMB <= 400 },
    };
    if (values.json) process.stdout.write(JSON.stringify({ ...result, targets }) + "\n");
    else {
      process.stdout.write(`base ${(result.model.bytes / 2 ** 20).toFixed(0)} MiB Q4_0 (${(m.parameters / 1e9).toFixed(2)}B parameters), rank-${result.adapter.rank} adapter on all 7 projections (${(result.adapter.bytes / 2 ** 20).toFixed(1)} MiB)\n`);
      process.stdout.write(`merge --type ${result.type} (${result.engine} kernels): ${result.mergeSeconds.map((s) => s.toFixed(1)).join(" / ")} s (median ${result.medianSeconds.toFixed(1)} s), ${result.tensorsMerged} tensors\n`);
      process.stdout.write(`plain streamed copy of the model (no adapter): median ${result.medianCopySeconds.toFixed(1)} s\n`);
      for (const [k, t] of Object.entries(targets)) process.stdout.write(`target ${k}: ${t.value} (goal <= ${t.goal}) ${t.met ? "met" : "NOT met"}\n`);
      process.stdout.write(`peak RSS ${result.peakRssMiB.map((x) => x.toFixed(0)).join(" / ")} MiB (idle Node child ${idle.toFixed(0)} MiB; largest tensor as f32 ${result.largestTensorF32MiB.toFixed(0)} MiB)\n`);
    }
  } finally {
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
