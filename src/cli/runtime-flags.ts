// Flags shared by the commands that run a model (run, chat, demo): parsing and opening the runtime.
import { UsageError } from "./command.js";
import { Runtime, type RuntimeOptions } from "../runtime/index.js";
import type { GpuChoice } from "../backends/backend.js";

/** parseArgs option specs for model loading. */
export const RUNTIME_FLAGS = {
  model: { type: "string", short: "m" },
  adapter: { type: "string", short: "a", multiple: true },
  gpu: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string", short: "t" },
  ctx: { type: "string", short: "c" },
  device: { type: "string" },
  "gpu-layers": { type: "string" },
  "adapter-precision": { type: "string" },
} as const;

export interface RuntimeFlagValues {
  model?: string;
  adapter?: string[];
  gpu?: string;
  backend?: string;
  threads?: string;
  ctx?: string;
  device?: string;
  "gpu-layers"?: string;
  "adapter-precision"?: string;
}

/** One -a value: NAME=FILE[:SCALE] (a trailing ":number" is the scale; other colons belong to the path). */
export function parseAdapterFlag(spec: string): { name: string; file: string; scale: number } {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`-a wants NAME=FILE[:SCALE], got "${spec}"`);
  const name = spec.slice(0, eq);
  let file = spec.slice(eq + 1);
  let scale = 1;
  const m = /^(.*):(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(file);
  if (m && m[1].length > 0) {
    file = m[1];
    scale = Number(m[2]);
  }
  return { name, file, scale };
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} wants a whole number >= 1, got "${v}"`);
  return n;
}

/** Runtime options from the flags. */
export function runtimeOptions(v: RuntimeFlagValues, extra: Partial<RuntimeOptions> = {}): RuntimeOptions {
  // without --gpu the runtime decides (the device plan's GPU API with --device, else "auto")
  const gpu = v.gpu === undefined ? undefined : v.gpu === "off" || v.gpu === "false" || v.gpu === "cpu" ? false : v.gpu;
  if (gpu !== undefined && gpu !== false && !["auto", "cuda", "vulkan", "metal"].includes(gpu)) throw new UsageError(`--gpu wants auto, cuda, vulkan, metal or off, got "${v.gpu}"`);
  const gpuLayers = v["gpu-layers"] === undefined ? undefined : Number(v["gpu-layers"]);
  if (gpuLayers !== undefined && (!Number.isInteger(gpuLayers) || gpuLayers < 0)) throw new UsageError(`--gpu-layers wants a whole number >= 0, got "${v["gpu-layers"]}"`);
  const precision = v["adapter-precision"];
  if (precision !== undefined && precision !== "f32" && precision !== "q8") throw new UsageError(`--adapter-precision wants f32 or q8, got "${precision}"`);
  const backend = v.backend ?? "auto";
  if (!["auto", "native", "wasm"].includes(backend)) throw new UsageError(`--backend wants auto, native or wasm, got "${v.backend}"`);
  return {
    model: v.model,
    backend: backend as RuntimeOptions["backend"],
    gpu: gpu as GpuChoice | undefined,
    threads: positiveInt("threads", v.threads),
    contextSize: positiveInt("ctx", v.ctx),
    device: v.device,
    gpuLayers,
    adapterPrecision: precision,
    ...extra,
  };
}

/** Open the runtime and load every -a adapter (in order). */
export async function openWithAdapters(v: RuntimeFlagValues, extra: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const specs = (v.adapter ?? []).map(parseAdapterFlag);
  const rt = await Runtime.open(runtimeOptions(v, extra));
  for (const notice of rt.notices) process.stderr.write(`lora-edge: ${notice}\n`);
  try {
    for (const a of specs) await rt.adapters.load(a.name, a.file, { scale: a.scale });
  } catch (e) {
    await rt.dispose();
    throw e;
  }
  return rt;
}

/** Parse a whole number flag with a default. */
export function intFlag(flag: string, v: string | undefined, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} wants a whole number >= ${min}, got "${v}"`);
  return n;
}

/** Parse a number flag with a default. */
export function numFlag(flag: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} wants a number, got "${v}"`);
  return n;
}
