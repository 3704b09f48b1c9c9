// Options shared by the commands that run a model (run, chat, demo): their spec, and opening the runtime from them.
import cliProgress from "cli-progress";
import type { IntSpec, NumberSpec, StringSpec, Values } from "./spec.js";
import { parseAdapterFlag } from "./adapter-args.js";
import { CONTEXT_SIZE_LIMITS, Runtime, type RuntimeOptions } from "../runtime/index.js";
import type { GpuChoice } from "../backends/backend.js";
import { onInterrupt } from "../interrupt.js";

/** Option specs for loading a model and its adapters. */
export const RUNTIME_OPTIONS = {
  model: { kind: "string", short: "m", value: "FILE", help: "base model GGUF (default: the embedded stories260K)" } as StringSpec,
  adapter: { kind: "string", short: "a", value: "NAME=FILE[:SCALE]", multiple: true, help: "load an adapter under NAME at SCALE (default 1; from -100 to 100)" } as StringSpec & { multiple: true },
  gpu: { kind: "string", value: "API", choices: ["auto", "off", "cuda", "vulkan", "metal"], help: "GPU API (default: the device plan's, else auto)" } as StringSpec,
  backend: { kind: "string", value: "B", choices: ["auto", "native", "wasm"], default: "auto", help: "llama.cpp (native), lora-edge's wasm engine, or auto" } as StringSpec & { default: string },
  threads: { kind: "int", short: "t", min: 1, help: "CPU threads, at most the usable cores (default: measured at open)" } as IntSpec,
  ctx: { kind: "int", short: "c", min: CONTEXT_SIZE_LIMITS.min, max: CONTEXT_SIZE_LIMITS.max, help: "context size in tokens (default: min(2048, the model's))" } as IntSpec,
  device: { kind: "string", value: "auto|PROFILE", help: "plan GPU layers, threads and context for a device profile" } as StringSpec,
  "gpu-layers": { kind: "int", min: 0, help: "layers on the GPU (default: the plan's, else llama.cpp's)" } as IntSpec,
  "adapter-precision": { kind: "string", value: "P", choices: ["f32", "q8"], help: "wasm engine: adapter halves in f32 (exact) or q8" } as StringSpec,
};

/** Option specs for sampling (run and chat). */
export const SAMPLING_OPTIONS = {
  tokens: { kind: "int", short: "n", min: 0, default: 64, help: "tokens to generate" } as IntSpec & { default: number },
  temperature: { kind: "number", min: 0, default: 0, help: "sampling temperature; 0 is greedy" } as NumberSpec & { default: number },
  "top-k": { kind: "int", min: 0, default: 40, help: "sample from the K most likely tokens; 0 means all" } as IntSpec & { default: number },
  "top-p": { kind: "number", above: 0, max: 1, default: 0.95, help: "sample from the smallest set whose probability reaches P" } as NumberSpec & { default: number },
  seed: { kind: "int", min: 0, default: 0, help: "random seed for sampling" } as IntSpec & { default: number },
};

export type RuntimeFlagValues = Values<typeof RUNTIME_OPTIONS>;

/** Runtime options from the parsed values. */
export function runtimeOptions(v: Partial<RuntimeFlagValues>, extra: Partial<RuntimeOptions> = {}): RuntimeOptions {
  // without --gpu the runtime decides (the device plan's GPU API with --device, else "auto")
  const gpu = v.gpu === undefined ? undefined : v.gpu === "off" ? false : (v.gpu as GpuChoice);
  return {
    model: v.model,
    backend: (v.backend ?? "auto") as RuntimeOptions["backend"],
    gpu,
    threads: v.threads,
    contextSize: v.ctx,
    device: v.device,
    gpuLayers: v["gpu-layers"],
    adapterPrecision: v["adapter-precision"] as RuntimeOptions["adapterPrecision"],
    ...extra,
  };
}

/**
 * A model-load progress bar on an interactive stderr (nothing otherwise); the cursor it hides comes back on
 * SIGINT and SIGTERM too.
 */
export function loadProgress(enabled: boolean): { onProgress?: (p: number) => void; stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { stop() {} };
  const bar = new cliProgress.SingleBar({ format: "loading {bar} {percentage}%", hideCursor: true, stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
  const release = onInterrupt(() => { bar.stop(); });
  bar.start(100, 0);
  return {
    onProgress: (p) => bar.update(Math.round(p * 100)),
    stop() { bar.update(100); bar.stop(); release(); },
  };
}

/** Open the runtime and load every -a adapter (in order); `progress` shows the load bar on a terminal. */
export async function openWithAdapters(v: Partial<RuntimeFlagValues>, opts: { progress?: boolean } = {}): Promise<Runtime> {
  const specs = (v.adapter ?? []).map(parseAdapterFlag);
  const bar = loadProgress(opts.progress ?? false);
  let rt: Runtime;
  try {
    rt = await Runtime.open(runtimeOptions(v, { onProgress: bar.onProgress }));
  } finally {
    bar.stop();
  }
  for (const notice of rt.notices) process.stderr.write(`lora-edge: ${notice}\n`);
  try {
    for (const a of specs) await rt.adapters.load(a.name, a.file, { scale: a.scale });
  } catch (e) {
    await rt.dispose();
    throw e;
  }
  return rt;
}
