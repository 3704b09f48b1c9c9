// The per-device benchmark: load, context, adapter load, swaps, prefill/decode with and without an adapter, memory, kernels.

import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { NativeBackend } from "../backends/native.js";
import type { ActiveAdapter, BackendContext, GpuReport, SamplingOptions } from "../backends/backend.js";
import { askForVulkanDevice, VULKAN_VISIBLE_DEVICES } from "../devices/vulkan.js";
import { usableCores } from "../devices/cores.js";
import { detect, type Detection } from "../devices/detect.js";
import { planWithFacts, type MemoryPlan } from "../devices/plan.js";
import { profilesDir } from "../devices/profiles.js";
import { shapeById, synthAdapter, synthModel, PROJECTIONS, type ProjectionName, type SynthWeightType, type Quantizer } from "../tools/synth.js";
import { coreQuantizer } from "../tools/synth/core-quantizer.js";
import { figure, timeMs, type Figure } from "./stats.js";
import { probeLoad, type ProbeResult } from "./probe.js";
import { BENCH_SCHEMA, type BenchResult } from "./schema.js";
import { openGguf } from "../gguf/reader.js";
import { packageRoot } from "../paths.js";
import { Rng } from "../random.js";

export interface BenchOptions {
  shape: string;
  type: SynthWeightType;
  vocab?: number;
  layers?: number;
  rank: number;
  modules: ProjectionName[];
  contextSize: number;
  promptTokens: number;
  decodeTokens: number;
  /** Repetitions of each timed step (loads use fewer: see loadRuns). */
  runs: number;
  loadRuns: number;
  threads?: number;
  /** Where generated models are cached. */
  modelsDir: string;
  quick: boolean;
  command: string;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Facts source override (tests). */
  detection?: Detection;
  /** Kernel section: the core's compiled benchmark when present (default), the in-process GEMV only, or none. */
  kernels?: "auto" | "inline" | "none";
  /** A GPU API asked for explicitly (default: the detected one). "vulkan" also takes a CPU-type device (lavapipe). */
  gpu?: "vulkan" | "cuda" | "metal";
}

const GREEDY: SamplingOptions = { temperature: 0, topK: 1, topP: 1, seed: 1 };

function packageVersion(dir: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Makes (or reuses) the generated model and adapter for these options. */
export async function benchModels(o: BenchOptions): Promise<{ model: string; adapter: string; quantizer: string }> {
  mkdirSync(o.modelsDir, { recursive: true });
  const shape = shapeById(o.shape);
  const vocab = o.vocab ?? shape.nVocab;
  const layers = o.layers ?? shape.nLayer;
  let quantize: Quantizer | undefined;
  let quantizer = "random blocks";
  if (o.type === "Q4_0" || o.type === "Q8_0") {
    const q = await coreQuantizer();
    if (q.quantize) { quantize = q.quantize; quantizer = "wasm core"; }
  } else quantizer = "none";
  const tag = `${shape.id}-v${vocab}-l${layers}-${o.type}-${quantizer === "wasm core" ? "core" : "rand"}`;
  const model = path.join(o.modelsDir, `${tag}.gguf`);
  const adapter = path.join(o.modelsDir, `${shape.id}-l${layers}-lora-r${o.rank}-${o.modules.join("")}.gguf`);
  if (!existsSync(model)) {
    o.log?.(`generating ${model}`);
    synthModel(model, { shape: shape.id, type: o.type, vocab, layers, quantize });
  }
  if (!existsSync(adapter)) {
    o.log?.(`generating ${adapter}`);
    synthAdapter(adapter, { shape: shape.id, rank: o.rank, modules: o.modules, layers });
  }
  return { model, adapter, quantizer };
}

/** Random valid prompt tokens (past the control and byte tokens), BOS first. */
function promptTokens(n: number, vocab: number, seed: number): number[] {
  const out = [1];
  const rng = new Rng(seed);
  for (let i = 1; i < n; i++) out.push(259 + (rng.u32() % Math.max(1, vocab - 259)));
  return out;
}

/** Median of samples. */
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Prefill (to the first sampled token) and median per-token decode time of one generation on a cleared context. */
async function generateTimed(ctx: BackendContext, prompt: number[], decode: number): Promise<{ prefillMs: number; tokenMs: number }> {
  const r = await generatePaired([ctx], prompt, decode);
  return { prefillMs: r[0].prefillMs, tokenMs: r[0].tokenMs.length ? median(r[0].tokenMs) : 0 };
}

/**
 * Generations on several contexts with their decode steps interleaved (one token on each in turn), so that
 * the per-token times of base and adapter are taken seconds apart under the same machine load.
 */
async function generatePaired(ctxs: BackendContext[], prompt: number[], decode: number): Promise<{ prefillMs: number; tokenMs: number[] }[]> {
  const out: { prefillMs: number; tokenMs: number[] }[] = [];
  const its: AsyncGenerator<number, void, void>[] = [];
  for (const c of ctxs) {
    await c.clear();
    const it = c.sample(prompt, GREEDY);
    const t0 = performance.now();
    const first = await it.next();
    if (first.done) throw new Error("the model produced no token");
    out.push({ prefillMs: performance.now() - t0, tokenMs: [] });
    its.push(it);
  }
  for (let i = 0; i < decode; i++) {
    for (let k = 0; k < its.length; k++) {
      const t0 = performance.now();
      const r = await its[k].next();
      if (r.done) throw new Error(`generation stopped after ${i + 1} tokens`);
      out[k].tokenMs.push(performance.now() - t0);
    }
  }
  for (const it of its) await it.return(undefined);
  return out;
}

function pct(a: number, b: number): number {
  return ((a - b) / b) * 100;
}

interface CoreBenchOutput {
  settings: { rounds: number };
  ceilingGBs: { oneThread: number; allThreads: number };
  gemv: { type: string; variant: string; threads: number; GBs: number }[];
  loraOverheadPct: { r16: number };
  loraOverheadPctThreads: { r16: number };
  merge: { wasmMs: number; tsMs: number };
}

/** The core's own kernel benchmark (compiled bench/kernels.js), Q4_0 4096x4096 only; undefined when it is not built. */
async function coreKernelBench(o: BenchOptions, notes: string[]): Promise<Record<string, Figure> | undefined> {
  const script = path.join(packageRoot(), "build", "bench", "kernels.js");
  if (!existsSync(script)) return undefined;
  const rounds = o.quick ? 2 : 5;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [script, "--json", "--types", "Q4_0", "--shapes", "4096x4096",
      "--rounds", String(rounds)], { maxBuffer: 1 << 24, timeout: 300_000 });
    const r = JSON.parse(stdout.trim().split("\n").pop()!) as CoreBenchOutput;
    const one = (v: number, unit: string) => figure(Array(rounds).fill(v), unit);
    const out: Record<string, Figure> = {
      read_ceiling_1t_gbps: one(r.ceilingGBs.oneThread, "GB/s"),
      read_ceiling_all_gbps: one(r.ceilingGBs.allThreads, "GB/s"),
    };
    for (const g of r.gemv) out[`q4_0_gemv_${g.variant.replace(/-/g, "_")}_gbps`] = one(g.GBs, "GB/s");
    out.lora_r16_overhead_1t_pct = one(r.loraOverheadPct.r16, "%");
    out.lora_r16_overhead_all_pct = one(r.loraOverheadPctThreads.r16, "%");
    out.merge_4096_r16_wasm_ms = one(r.merge.wasmMs, "ms");
    notes.push(`kernels: the core's benchmark (bench/kernels.js, Q4_0 4096x4096, ${rounds} interleaved rounds); it reports medians, so min = median = max`);
    return out;
  } catch (e) {
    notes.push(`kernels: the core's benchmark failed (${(e as Error).message.split("\n")[0]}); measured in-process instead`);
    return undefined;
  }
}

/** The wasm kernel section: the core's benchmark when built, else a Q4_0 GEMV of a 1B FFN matrix, plain and with a fused adapter. */
async function kernelSection(o: BenchOptions, notes: string[]): Promise<Record<string, Figure> | undefined> {
  const fromCore = o.kernels === "inline" ? undefined : await coreKernelBench(o, notes);
  if (fromCore) return fromCore;
  try {
    const { loadCore } = await import("../core/index.js");
    const core = await loadCore();
    const rows = 2048;
    const cols = 8192;
    const r = o.rank;
    const w = new Float32Array(rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
    const m = core.upload(2, core.quantize(2, w), rows, cols);
    const a = core.uploadF32(new Float32Array(r * cols).fill(0.01), r, cols);
    const b = core.uploadF32(new Float32Array(rows * r).fill(0.01), rows, r);
    const x = new Float32Array(cols).fill(0.5);
    const out = new Float32Array(rows);
    const bytes = m.rows * m.rowBytes;
    const plain: number[] = [];
    const adapted: number[] = [];
    const over: number[] = [];
    core.gemv(m, x, { out });
    const reps = 20;
    for (let run = 0; run < Math.max(3, o.runs); run++) {
      let t = performance.now();
      for (let i = 0; i < reps; i++) core.gemv(m, x, { out });
      const tp = (performance.now() - t) / reps;
      t = performance.now();
      for (let i = 0; i < reps; i++) core.gemvAdapted(m, x, [{ a, b, scale: 1 }], { out });
      const ta = (performance.now() - t) / reps;
      plain.push(bytes / tp / 1e6);
      adapted.push(bytes / ta / 1e6);
      over.push(pct(ta, tp));
    }
    notes.push(`kernels: wasm core build "${core.build}", one thread, Q4_0 GEMV ${rows}x${cols}, adapter rank ${r} fused in the row pass`);
    return {
      q4_0_gemv_gbps: figure(plain, "GB/s"),
      q4_0_gemv_lora_gbps: figure(adapted, "GB/s"),
      lora_overhead_pct: figure(over, "%"),
    };
  } catch (e) {
    notes.push(`kernels: skipped (${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

/** Runs the whole benchmark and returns one result in the bench schema. */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const log = o.log ?? (() => {});
  const notes: string[] = [];
  if (o.gpu === "vulkan" && !o.detection) {
    const vk = await askForVulkanDevice();
    if (vk?.cpuType) notes.push(`asked for Vulkan: ${vk.name} is a CPU-type device (a software GPU), used through ${VULKAN_VISIBLE_DEVICES}=${vk.index}; ` +
      "its speed is the CPU running Vulkan shaders: this run shows the GPU pipeline end to end, not a GPU's speed");
  }
  const d = o.detection ?? await detect();
  const cores = usableCores();
  const threads = Math.min(o.threads ?? d.threads, cores);
  if ((o.threads ?? d.threads) > cores) notes.push(`threads: ${o.threads ?? d.threads} asked for, but this process may use ${cores} cores: using ${cores}`);
  const gpu = o.gpu ?? d.facts.gpu.type;
  if (o.gpu && d.facts.gpu.type !== o.gpu) {
    throw new Error(`asked for ${o.gpu}, but node-llama-cpp found ${d.facts.gpu.type || "no GPU"}${d.facts.gpu.error ? ` (${d.facts.gpu.error})` : ""}`);
  }
  const { model, adapter, quantizer } = await benchModels(o);
  const shape = shapeById(o.shape);
  const vocab = o.vocab ?? shape.nVocab;
  const layers = o.layers ?? shape.nLayer;
  const sections: Record<string, Record<string, Figure>> = {};
  const prompt = promptTokens(o.promptTokens, vocab, 12345);
  const loadBefore = os.loadavg()[0];

  // Cold load and measured memory (fresh process when compiled).
  log("cold load and memory probe (fresh processes)");
  const probes: ProbeResult[] = [];
  for (let i = 0; i < o.loadRuns; i++) {
    probes.push(await probeLoad({ modelPath: model, adapterPath: adapter, contextSize: o.contextSize, threads, gpu }));
  }
  notes.push("decode tok/s = 1000 / the median time per token within a run; prefill tok/s = prompt tokens / time to the first sampled token; " +
    "base and adapter decode one token each in turn; the decode overhead of a run is the median of the paired per-token ratios");
  notes.push("cold load: a new node process loads the native binding and the model; the OS page cache was not dropped (the file was just written or read)");

  // Warm loads: binding cached, file in page cache.
  log("warm loads");
  const warm: number[] = [];
  for (let i = 0; i < o.loadRuns + 1; i++) {
    const b = await NativeBackend.open({ modelPath: model, gpu, threads });
    if (i > 0) warm.push(b.timings.modelLoadMs);
    await b.dispose();
  }
  sections.load = {
    cold_ms: figure(probes.map((p) => p.initMs + p.modelLoadMs), "ms"),
    cold_binding_ms: figure(probes.map((p) => p.initMs), "ms"),
    warm_ms: figure(warm, "ms"),
  };

  const backend = await NativeBackend.open({ modelPath: model, gpu, threads });
  const rssLoaded = process.memoryUsage().rss;
  let gpuReport: GpuReport | undefined;
  try {
    log("context creation");
    const ctxTimes: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      let c: BackendContext | undefined;
      ctxTimes.push(await timeMs(async () => { c = await backend.createContext({ contextSize: o.contextSize, adapters: [], live: true }); }));
      await c!.dispose();
    }
    sections.context = { create_ms: figure(ctxTimes, "ms") };

    log("adapter load");
    const adapterLoads: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const t0 = performance.now();
      const h = await backend.loadAdapter(adapter);
      adapterLoads.push(performance.now() - t0);
      if (i < o.runs - 1 && backend.canFreeAdapters) await backend.freeAdapter(h);
    }
    if (!backend.canFreeAdapters) notes.push("adapter load: this node-llama-cpp cannot free adapters, so loads after the first are cache hits");
    sections.adapter = { load_ms: figure(adapterLoads, "ms") };
    const handle = await backend.loadAdapter(adapter);
    const withAdapter: ActiveAdapter[] = [{ adapter: handle, scale: 1 }];

    log("prefill and decode, base and adapter (interleaved)");
    const base = await backend.createContext({ contextSize: o.contextSize, adapters: [], live: true });
    const lora = await backend.createContext({ contextSize: o.contextSize, adapters: withAdapter, live: true });
    const rssContexts = process.memoryUsage().rss;
    gpuReport = await backend.gpuReport();
    if (gpuReport) {
      // What llama.cpp placed on the device: layers, and its bytes there for the model and the two contexts.
      sections.offload = {
        gpu_layers: figure([gpuReport.layers], "layers"),
        model_on_device_mib: figure([gpuReport.modelBytes / 2 ** 20], "MiB"),
        contexts_on_device_mib: figure([gpuReport.contextBytes / 2 ** 20], "MiB"),
        model_on_host_mib: figure([gpuReport.hostModelBytes / 2 ** 20], "MiB"),
        contexts_on_host_mib: figure([gpuReport.hostContextBytes / 2 ** 20], "MiB"),
      };
    }
    await generateTimed(base, prompt.slice(0, 8), 2); // warm-up: first graph build and repack
    await generateTimed(lora, prompt.slice(0, 8), 2);
    const pre = { base: [] as number[], lora: [] as number[] };
    const dec = { base: [] as number[], lora: [] as number[] };
    const decOver: number[] = [];
    const preOver: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      // Alternate which context goes first, so neither always prefills on a warmer cache.
      const pair = i % 2 ? [lora, base] : [base, lora];
      const r = await generatePaired(pair, prompt, o.decodeTokens);
      const [b, a] = i % 2 ? [r[1], r[0]] : [r[0], r[1]];
      pre.base.push((prompt.length / b.prefillMs) * 1000);
      pre.lora.push((prompt.length / a.prefillMs) * 1000);
      dec.base.push(1000 / median(b.tokenMs));
      dec.lora.push(1000 / median(a.tokenMs));
      decOver.push(median(a.tokenMs.map((t, j) => pct(t, b.tokenMs[j]))));
      preOver.push(pct(a.prefillMs, b.prefillMs));
      log(`  run ${i + 1}/${o.runs}: prefill ${pre.base.at(-1)!.toFixed(1)} / ${pre.lora.at(-1)!.toFixed(1)} tok/s, ` +
        `decode ${dec.base.at(-1)!.toFixed(2)} / ${dec.lora.at(-1)!.toFixed(2)} tok/s (base / adapter)`);
    }
    sections.tokens = {
      prefill_base_tps: figure(pre.base, "tok/s"),
      prefill_adapter_tps: figure(pre.lora, "tok/s"),
      decode_base_tps: figure(dec.base, "tok/s"),
      decode_adapter_tps: figure(dec.lora, "tok/s"),
      prefill_overhead_pct: figure(preOver, "%"),
      decode_overhead_pct: figure(decOver, "%"),
    };
    await lora.dispose();

    log("swaps");
    const swap = { live: [] as number[], firstAfter: [] as number[], firstPlain: [] as number[], fresh: [] as number[] };
    if (base.liveSwap) {
      for (let i = 0; i < o.runs; i++) {
        await generateTimed(base, prompt.slice(0, 16), 1);
        swap.live.push(await timeMs(() => base.setAdapters(withAdapter)));
        const after = await generateTimed(base, prompt.slice(0, 1), 0);
        swap.firstAfter.push(after.prefillMs);
        const plain = await generateTimed(base, prompt.slice(0, 1), 0);
        swap.firstPlain.push(plain.prefillMs);
        swap.live.push(await timeMs(() => base.setAdapters([])));
      }
    } else notes.push(`no live swap (${backend.liveSwapNote ?? "unavailable in this node-llama-cpp"}): swaps make new contexts`);
    await base.dispose();
    const recreate = await backend.createContext({ contextSize: o.contextSize, adapters: [], live: false });
    const firstAfterNew: number[] = [];
    const firstSameContext: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      swap.fresh.push(await timeMs(() => recreate.setAdapters(withAdapter)));
      firstAfterNew.push((await generateTimed(recreate, prompt.slice(0, 1), 0)).prefillMs);
      firstSameContext.push((await generateTimed(recreate, prompt.slice(0, 1), 0)).prefillMs);
      swap.fresh.push(await timeMs(() => recreate.setAdapters([])));
    }
    await recreate.dispose();
    sections.swap = {
      ...(swap.live.length ? {
        live_ms: figure(swap.live, "ms"),
        first_token_after_swap_ms: figure(swap.firstAfter, "ms"),
        first_token_no_swap_ms: figure(swap.firstPlain, "ms"),
      } : {}),
      new_context_ms: figure(swap.fresh, "ms"),
      first_token_after_new_context_ms: figure(firstAfterNew, "ms"),
      first_token_same_context_ms: figure(firstSameContext, "ms"),
    };

    const mem = await backend.memory();
    sections.memory = {
      rss_after_load_mib: figure([rssLoaded / 2 ** 20], "MiB"),
      rss_with_two_contexts_mib: figure([rssContexts / 2 ** 20], "MiB"),
      llama_buffers_mib: figure([(probes[0].modelSize + probes[0].buffers.loraBytes + probes[0].buffers.kvBytes +
        probes[0].buffers.computeBytes + probes[0].buffers.outputBytes) / 2 ** 20], "MiB"),
      ...(mem.vramUsed !== undefined ? { vram_used_mib: figure([mem.vramUsed / 2 ** 20], "MiB") } : {}),
    };
  } finally {
    await backend.dispose();
  }

  log("reload (the path without live swap: model + adapter + context)");
  const reload: number[] = [];
  for (let i = 0; i < o.loadRuns; i++) {
    let b: NativeBackend | undefined;
    reload.push(await timeMs(async () => {
      b = await NativeBackend.open({ modelPath: model, gpu, threads });
      const h = await b.loadAdapter(adapter);
      await b.createContext({ contextSize: o.contextSize, adapters: [{ adapter: h, scale: 1 }], live: true });
    }));
    await b!.dispose();
  }
  sections.swap.reload_ms = figure(reload, "ms");

  if (o.kernels !== "none") {
    log("wasm kernels");
    const k = await kernelSection(o, notes);
    if (k) sections.kernels = k;
  }

  // Plan against llama.cpp's own buffers (from the probe) and the process's resident memory.
  let planCheck: BenchResult["plan"];
  let p: MemoryPlan | undefined;
  try {
    p = planWithFacts({ model, adapters: [adapter], contextSize: o.contextSize, profile: d.profile, threads,
      batchSize: Math.min(512, o.contextSize) }, d.facts);
  } catch (e) {
    notes.push(`plan: ${(e as Error).message}`);
  }
  if (p) {
    const b = probes[0].buffers;
    const measured = { weights: probes[0].modelSize, adapters: b.loraBytes, kvCache: b.kvBytes, compute: b.computeBytes + b.outputBytes,
      total: probes[0].modelSize + b.loraBytes + b.kvBytes + b.computeBytes + b.outputBytes,
      rssGrowth: probes[0].rss.afterContext - probes[0].rss.start };
    // With a discrete GPU the plan has a compute buffer on each side (the host's holds the staging and the logits).
    const compute = p.placement.gpu && p.placement.host ? p.placement.gpu.compute + p.placement.host.compute : p.bytes.compute + p.bytes.output;
    const total = p.bytes.weights + p.bytes.adapters + p.bytes.kvCache + compute;
    const planned = { weights: p.bytes.weights, adapters: p.bytes.adapters, kvCache: p.bytes.kvCache, compute, total, rssGrowth: total };
    const errorPct: Record<string, number> = {};
    for (const k of Object.keys(measured) as (keyof typeof measured)[]) {
      errorPct[k] = measured[k] > 0 ? Number(pct(planned[k], measured[k]).toFixed(2)) : 0;
    }
    planCheck = { plannedBytes: planned, measuredBytes: measured, errorPct };
    notes.push("plan check: measured = llama.cpp's logged buffers (model size, LoRA, KV, compute, output) in the probe process; " +
      "rssGrowth = resident memory growth of that process (includes the native libraries and, with mmap, mapped file pages)");
  }

  notes.push(`system load average (1 min): ${loadBefore.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end, on ${d.facts.cpu.logicalCores} logical CPUs` +
    (os.loadavg()[0] > d.facts.cpu.logicalCores * 0.75 ? " (other work competed for the CPU: figures are noisy)" : ""));
  const root = packageRoot();
  const llamaPkg = path.join(root, "node_modules", "node-llama-cpp");
  const modelBytes = statSync(model).size;
  return {
    schema: BENCH_SCHEMA,
    createdAt: new Date().toISOString(),
    command: o.command,
    quick: o.quick,
    profile: { name: d.profile.name, title: d.profile.title, gpu: d.profile.gpu, memoryModel: d.profile.memory.model },
    facts: d.facts,
    versions: { loraEdge: packageVersion(root), node: process.version, nodeLlamaCpp: packageVersion(llamaPkg),
      llamaCpp: llamaCppRelease(llamaPkg), binary: os.platform() + "-" + os.arch(), backend: `native ${gpu || "cpu"}` },
    model: { shape: shape.id, title: shape.title, type: o.type, vocab, layers, parameters: countParameters(model),
      bytes: modelBytes, quantizer, synthetic: true },
    adapter: { rank: o.rank, modules: o.modules.map((m) => PROJECTIONS[m]), type: "F32", bytes: statSync(adapter).size },
    settings: { threads, contextSize: o.contextSize, batchSize: Math.min(512, o.contextSize), promptTokens: prompt.length,
      decodeTokens: o.decodeTokens, runs: o.runs, coldLoad: "process" },
    sections,
    ...(planCheck ? { plan: planCheck } : {}),
    ...(gpuReport ? { gpu: { api: gpuReport.api, devices: gpuReport.devices, software: gpuReport.software, layers: gpuReport.layers,
      totalLayers: gpuReport.totalLayers } } : {}),
    notes,
  };
}

function llamaCppRelease(pkgDir: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(pkgDir, "llama", "binariesGithubRelease.json"), "utf8")) as { release: string }).release;
  } catch {
    return "unknown";
  }
}

function countParameters(file: string): number {
  const f = openGguf(file);
  try {
    return f.tensors.reduce((s, t) => s + t.nElements, 0);
  } finally {
    f.close();
  }
}
