// Training benchmark: LoRA training tokens/s and peak RSS on generated stories15M and SmolLM-135M shapes (Q4_0 and F32), rank 8 and 16 on all 7 projections, 1 and 2 threads; llama.cpp's llama-finetune (full F32 fine-tuning) as the anchor.
import { fork, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openGguf } from "../src/gguf/reader.js";
import { synthModel, shapeById } from "../src/tools/synth.js";
import { trainLora } from "../src/train/run.js";
import { mulberry32 } from "../src/random.js";
import { createPool, loadCore } from "../src/core/index.js";
import { peakRssMiB } from "./peak-rss.js";

interface ChildReport {
  tokensPerSecond: number;
  maxRssMiB: number;
  activationBytes: number;
  adapterBytes: number;
  baseBytes: number;
}

const CTX = 64;

/**
 * Child mode: training steps (the first is not timed), then its own peak resident memory. Tokens/s is one
 * step's tokens over the median step's time, so a moment of other work on the machine moves it little.
 */
async function child(args: string[]): Promise<void> {
  const [model, rank, threads, steps, x8, nVocab] = args;
  const vocab = Number(nVocab);
  const r = mulberry32(7);
  const train = Array.from({ length: 8 }, () => ({ tokens: Array.from({ length: CTX }, () => Math.floor(r() * vocab)) }));
  let last = 0, report: Partial<ChildReport> = {};
  const stepMs: number[] = [];
  for await (const e of trainLora({ model, train, rank: Number(rank), lr: 1e-3, steps: Number(steps), batch: 1, ctx: CTX, threads: Number(threads), x8: x8 === "1" })) {
    if (e.kind === "step") {
      const now = performance.now();
      if (e.step > 1) stepMs.push(now - last);
      last = now;
    } else {
      const adapterBytes = e.adapter.pairs.reduce((s, p) => s + (p.a.length + p.b.length) * 4, 0);
      const sorted = stepMs.sort((a, b) => a - b), mid = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
      report = { tokensPerSecond: (CTX - 1) / (median / 1000), activationBytes: e.activationBytes, baseBytes: e.baseBytes, adapterBytes };
    }
  }
  process.send!({ ...report, maxRssMiB: peakRssMiB() });
}

function runChild(args: string[]): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ["--child", ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let got: ChildReport | undefined;
    c.on("message", (m) => { got = m as ChildReport; });
    c.on("exit", (code) => (got ? resolve(got) : reject(new Error(`training child exited with ${code}`))));
  });
}

/**
 * Peak RSS of a child that starts Node and the wasm core (with its worker threads) and parses the model's header
 * (metadata and tokenizer), reading no tensor and training nothing: the floor under a row's figure.
 */
function idleChild(model: string, threads: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ["--idle", model, String(threads)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    c.on("message", (m) => resolve(m as number));
    c.on("exit", (code) => (code ? reject(new Error(`idle child exited with ${code}`)) : undefined));
  });
}

/**
 * llama-finetune's training tokens/s on a model: two runs (one epoch each, no validation split) over a short
 * text and a longer one (sized from the first run to take about 15 s), the difference of their wall times over
 * the difference of their tokens, so loading and start-up cancel out. The windows (ctx tokens each) are the
 * count llama-finetune itself reports ("data=N/N").
 */
function anchor(bin: string, model: string, threads: number, dir: string): { tokensPerSecond: number; command: string } {
  const unit = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/train/logbook-train.txt"), "utf8");
  const run = (chars: number) => {
    const text = unit.repeat(Math.ceil(chars / unit.length)).slice(0, chars);
    const file = path.join(dir, `anchor-${chars}.txt`);
    writeFileSync(file, text);
    const args = ["-m", model, "-f", file, "-c", String(CTX), "-b", String(CTX), "-ub", String(CTX), "-t", String(threads), "-epochs", "1", "-val-split", "0", "-ngl", "0", "-o", path.join(dir, "anchor-out.gguf")];
    const t0 = performance.now();
    const r = spawnSync(bin, args, { encoding: "utf8", maxBuffer: 1 << 26 });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`llama-finetune failed (${r.status}): ${(r.stderr ?? "").slice(-400)}`);
    const seen = [...(r.stderr + r.stdout).matchAll(/data=0*(\d+)\/0*(\d+)/g)];
    if (!seen.length) throw new Error("llama-finetune reported no progress (data=N/N)");
    return { ms, windows: Number(seen[seen.length - 1][2]), command: `${bin} ${args.join(" ")}` };
  };
  // other work on the machine can make the short run the slower one: then the pair is run again (three tries)
  for (let attempt = 0; attempt < 3; attempt++) {
    const a = run(1500);
    const upper = (a.windows * CTX) / (a.ms / 1000);
    const want = a.windows + Math.max(8, Math.round((upper * 15) / CTX));
    const b = run(Math.round((1500 * want) / a.windows));
    if (b.windows > a.windows && b.ms > a.ms) return { tokensPerSecond: ((b.windows - a.windows) * CTX) / ((b.ms - a.ms) / 1000), command: b.command };
  }
  throw new Error("llama-finetune's longer run never took longer than its short one (three tries): the machine was too busy to measure it");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    json: { type: "boolean", default: false }, steps: { type: "string" }, seconds: { type: "string", default: "10" }, finetune: { type: "string" },
    shapes: { type: "string", default: "stories15m,smollm-135m" }, dir: { type: "string" },
  } });
  const log = (s: string) => { if (!values.json) console.log(s); else process.stderr.write(s + "\n"); };
  const dir = values.dir ?? mkdtempSync(path.join(tmpdir(), "lora-edge-bench-train-"));
  mkdirSync(dir, { recursive: true });
  // timed steps a row: --steps, or as many as take about --seconds (from a 3-step calibration run), 8 to 300,
  // so a row's median spans several seconds of a machine whose speed drifts, as the anchor's runs do
  const fixedSteps = values.steps === undefined ? undefined : Number(values.steps);
  const seconds = Number(values.seconds);
  const stepsFor = async (args: (steps: number) => string[]): Promise<number> => {
    if (fixedSteps !== undefined) return fixedSteps;
    const probe = await runChild(args(3));
    const stepMs = ((CTX - 1) / probe.tokensPerSecond) * 1000;
    return Math.max(8, Math.min(300, Math.ceil((seconds * 1000) / stepMs)));
  };
  const finetune = values.finetune ?? process.env.LLAMA_FINETUNE;
  const rows: Record<string, unknown>[] = [];
  const anchors: Record<string, unknown>[] = [];
  try {
    for (const id of values.shapes.split(",")) {
      const files = new Map<string, string>();
      for (const type of ["Q4_0", "F32"] as const) {
        const file = path.join(dir, `${id}-${type}.gguf`);
        if (!existsSync(file)) synthModel(file, { shape: shapeById(id), type, seed: 1 });
        files.set(type, file);
      }
      for (const threads of [1, 2]) {
        for (const type of ["Q4_0", "F32"] as const) {
          const file = files.get(type)!;
          const fileBytes = statSync(file).size;
          for (const rank of [8, 16]) {
            // quantized bases run their forward products on 8-bit activations, as llama.cpp does (TrainRunOptions.x8)
            const args = (steps: number) => [file, String(rank), String(threads), String(steps + 1), type === "Q4_0" ? "1" : "0", String(shapeById(id).nVocab)];
            const steps = await stepsFor(args);
            const r = await runChild(args(steps));
            // the floor's peak varies by a few MiB from one start to the next: the median of three
            const idles = [await idleChild(file, threads), await idleChild(file, threads), await idleChild(file, threads)].sort((a, b) => a - b);
            const idleMiB = idles[1];
            const goalMiB = (fileBytes + 4 * r.adapterBytes + r.activationBytes) / 2 ** 20 + idleMiB;
            const row = { shape: id, type, x8: type === "Q4_0", rank, threads, ctx: CTX, steps, idleMiB: Math.round(idleMiB), tokensPerSecond: Math.round(r.tokensPerSecond), maxRssMiB: Math.round(r.maxRssMiB), rssGoalMiB: Math.round(goalMiB),
              fileMiB: +(fileBytes / 2 ** 20).toFixed(1), adapterMiB: +(r.adapterBytes / 2 ** 20).toFixed(2), activationMiB: +(r.activationBytes / 2 ** 20).toFixed(1) };
            rows.push(row);
            log(JSON.stringify(row));
          }
          // the anchor runs right after the Q4_0 rows it is compared with (same shape and threads), so the ratio
          // compares figures taken minutes apart at most on a machine whose speed drifts
          if (type === "Q4_0") {
            if (finetune && existsSync(finetune)) {
              try {
                const a = anchor(finetune, files.get("F32")!, threads, dir);
                anchors.push({ shape: id, threads, ctx: CTX, tokensPerSecond: Math.round(a.tokensPerSecond), command: a.command });
              } catch (e) {
                anchors.push({ shape: id, threads, ctx: CTX, ran: false, reason: (e as Error).message });
              }
              log(JSON.stringify(anchors[anchors.length - 1]));
            } else {
              anchors.push({ shape: id, threads, ctx: CTX, ran: false, reason: "llama-finetune not found: set LLAMA_FINETUNE or --finetune to its binary (built from the llama.cpp source inside node-llama-cpp: cmake -DGGML_NATIVE=OFF, target llama-finetune)" });
            }
          }
        }
      }
    }
  } finally {
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
  // targets: Q4_0 LoRA training at >= 1.5x the anchor (same shape, ctx and threads), worst case over the rows; RSS within its bound everywhere
  const ratios = rows.filter((r) => r.type === "Q4_0").flatMap((r) => {
    const a = anchors.find((x) => x.shape === r.shape && x.threads === r.threads && typeof x.tokensPerSecond === "number");
    return a ? [(r.tokensPerSecond as number) / (a.tokensPerSecond as number)] : [];
  });
  const worstRatio = ratios.length ? Math.min(...ratios) : null;
  const worstRss = Math.max(...rows.map((r) => (r.maxRssMiB as number) / (r.rssGoalMiB as number)));
  const targets = {
    q4_0TrainingVsFinetune: { value: worstRatio === null ? null : +worstRatio.toFixed(2), goal: 1.5, met: worstRatio !== null && worstRatio >= 1.5 },
    peakRssWithinBound: { value: +worstRss.toFixed(3), goal: 1, met: worstRss <= 1 },
  };
  const out = { ctx: CTX, steps: fixedSteps ?? `about ${seconds} s of steps a row`, rssBound: "base file + 4 x adapter (f32) + the engine's activation, gradient and scratch buffers + the idle floor (Node, the wasm core and its threads, the model's header parsed; median of three starts)", rows, anchors, targets };
  if (values.json) process.stdout.write(JSON.stringify(out) + "\n");
  else console.log(JSON.stringify(targets, null, 2));
}

if (process.argv[2] === "--child") await child(process.argv.slice(3));
else if (process.argv[2] === "--idle") {
  openGguf(process.argv[3]);
  const threads = Number(process.argv[4]);
  const pool = threads > 1 ? await createPool({ threads }) : undefined;
  if (!pool) await loadCore();
  process.send!(peakRssMiB());
  pool?.dispose();
}
else await main();
