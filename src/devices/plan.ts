// plan(): memory (weights, adapters, KV cache, compute buffers), GPU layers and threads for a model on a device.
import { LoraEdgeError } from "../errors.js";

import { openGguf, type GgufFile } from "../gguf/reader.js";
import { modelHparams, type ModelHparams } from "../gguf/metadata.js";
import { getProfile, type DeviceProfile } from "./profiles.js";
import { defaultThreads, detectFromFacts } from "./detect.js";
import { gatherFacts, type SystemFacts } from "./facts.js";

export interface PlanInput {
  /** Base model: a path or an open file. */
  model: string | GgufFile;
  /** LoRA adapters loaded alongside (all attached at once is the worst case). */
  adapters?: (string | GgufFile)[];
  /** Default: the profile's, capped at the model's training context. */
  contextSize?: number;
  batchSize?: number;
  /** Parallel sequences sharing the context (each needs its own logits row). */
  sequences?: number;
  /** A profile or its name; default: detected from `facts`. */
  profile?: string | DeviceProfile;
  /** System facts; default: this machine's. */
  facts?: SystemFacts;
  flashAttention?: boolean;
  /** Force a GPU layer count (llama.cpp's n_gpu_layers; n_layer + 1 also offloads the output layer). */
  gpuLayers?: number;
  threads?: number;
}

/** Byte counts of one plan. */
export interface PlanBytes {
  /** All model tensors (equals llama.cpp's model size). */
  weights: number;
  /** Per repeating layer blk.N. */
  weightsPerLayer: number[];
  /** token_embd (stays in host memory). */
  inputLayer: number;
  /** output_norm + output (or the tied token_embd copy when offloaded). */
  outputLayer: number;
  adapters: number;
  adaptersPerLayer: number[];
  kvCache: number;
  kvPerLayer: number;
  /** Scratch for one micro-batch through the graph (llama.cpp's compute buffer). */
  compute: number;
  /** Logits buffer. */
  output: number;
  /** Everything above, counted once. */
  total: number;
}

/** Bytes on one side of a discrete GPU plan. */
export interface PlacedBytes {
  weights: number;
  adapters: number;
  kvCache: number;
  compute: number;
}

export interface MemoryPlan {
  profile: string;
  memoryModel: DeviceProfile["memory"]["model"];
  backend: string;
  model: { path: string; architecture: string; nLayer: number; nEmbd: number; nHeadKv: number; headDim: number;
    nVocab: number; contextLength: number; parameters: number };
  adapters: { path: string; bytes: number }[];
  contextSize: number;
  /** KV cells actually allocated (the context padded to 256). */
  kvCells: number;
  batchSize: number;
  microBatch: number;
  flashAttention: boolean;
  threads: number;
  /** llama.cpp n_gpu_layers (0 .. nLayer + 1). */
  gpuLayers: number;
  bytes: PlanBytes;
  /**
   * Where the bytes go. Unified memory: gpu is a part of host, not added to it. Discrete memory also splits
   * both sides: `gpu` (weights of the offloaded layers and the output layer, their adapters and KV cache, the
   * compute buffer) and `host` (the rest, the pinned staging buffer and the logits as compute).
   */
  placement: { gpuBytes: number; hostBytes: number; gpu?: PlacedBytes; host?: PlacedBytes };
  budget: { totalBytes: number; availableBytes: number; reserveBytes: number; usableBytes: number;
    gpuUsableBytes?: number };
  /** Largest context (multiple of 256) that would fit with these settings. */
  maxContextSize: number;
  notes: string[];
}

/** The model cannot run on the device: says what was needed, what is there, and what would fit. */
export class DoesNotFitError extends LoraEdgeError {
  constructor(
    readonly where: "host memory" | "unified memory" | "VRAM",
    readonly neededBytes: number,
    readonly availableBytes: number,
    readonly plan: MemoryPlan,
  ) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    const b = plan.bytes;
    super("DOES_NOT_FIT", `${plan.model.path} does not fit in ${where} of ${plan.profile}: needs ${gib(neededBytes)} ` +
      `(weights ${gib(b.weights)}, adapters ${gib(b.adapters)}, KV cache ${gib(b.kvCache)} for ${plan.contextSize} tokens, ` +
      `compute ${gib(b.compute + b.output)}), ${gib(availableBytes)} usable` +
      (plan.maxContextSize >= 256 ? `; the largest context that fits is ${plan.maxContextSize}` : "; no context size fits"));
  }
}

const pad = (n: number, m: number) => Math.ceil(n / m) * m;

/** Bytes of llama.cpp's compute buffer for one micro-batch (fitted to CPU buffers of llama-style graphs). */
export function computeBufferBytes(h: Pick<ModelHparams, "nEmbd" | "nVocab" | "nFf" | "nHead">, kvCells: number, microBatch: number, flashAttention: boolean): number {
  const e = h.nEmbd;
  const logits = h.nVocab + 2 * e;
  const ffn = 3 * h.nFf + 4 * e + (flashAttention ? kvCells / 2 : kvCells);
  const attn = flashAttention ? 4 * e + kvCells / 2 : h.nHead * kvCells + kvCells + 5.5 * e;
  return Math.ceil(microBatch * 4 * Math.max(logits, ffn, attn));
}

function open(m: string | GgufFile): { f: GgufFile; own: boolean } {
  return typeof m === "string" ? { f: openGguf(m), own: true } : { f: m, own: false };
}

/** Bytes per repeating layer, plus the rest, from a file's tensor table. */
function layerBytes(f: GgufFile, nLayer: number): { perLayer: number[]; other: Map<string, number>; total: number } {
  const perLayer = new Array<number>(nLayer).fill(0);
  const other = new Map<string, number>();
  let total = 0;
  for (const t of f.tensors) {
    total += t.byteSize;
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m && Number(m[1]) < nLayer) perLayer[Number(m[1])] += t.byteSize;
    else other.set(t.name, (other.get(t.name) ?? 0) + t.byteSize);
  }
  return { perLayer, other, total };
}

/** Computes the memory plan; throws DoesNotFitError when the model cannot run on the device. */
export async function plan(input: PlanInput): Promise<MemoryPlan> {
  const facts = input.facts ?? await gatherFacts();
  return planWithFacts(input, facts);
}

/**
 * The facts of `profile`'s reference device instead of this machine's memory and GPU: memory (all of it free)
 * from `memory.referenceBytes` (or `memoryBytes`), a GPU of the profile's kind with `referenceVramBytes` (or
 * `vramBytes`) of VRAM. CPU and OS facts stay `facts`'s. Without a reference, this machine's memory stays.
 */
export function factsForProfile(profile: DeviceProfile, facts: SystemFacts, o: { memoryBytes?: number; vramBytes?: number } = {}): SystemFacts {
  const memory = o.memoryBytes ?? profile.memory.referenceBytes;
  const vram = o.vramBytes ?? profile.memory.referenceVramBytes;
  const gpu: SystemFacts["gpu"] = profile.gpu === false ? { type: false, devices: [] } : {
    type: profile.gpu, devices: [`${profile.title} (reference)`],
    ...(profile.memory.model === "discrete" && vram ? { vram: { total: vram, used: 0, free: vram, unifiedSize: 0 } } : {}),
  };
  return {
    ...facts, source: `profile ${profile.name}`,
    memory: memory ? { totalBytes: memory, availableBytes: memory } : facts.memory,
    gpu,
  };
}

/** plan() with facts already at hand (synchronous). */
export function planWithFacts(input: PlanInput, facts: SystemFacts): MemoryPlan {
  const profile = typeof input.profile === "string" ? getProfile(input.profile)
    : input.profile ?? detectFromFacts(facts).profile;
  const { f, own } = open(input.model);
  const adapterFiles = (input.adapters ?? []).map(open);
  try {
    return compute(input, facts, profile, f, adapterFiles.map((a) => a.f));
  } finally {
    if (own) f.close();
    for (const a of adapterFiles) if (a.own) a.f.close();
  }
}

function compute(input: PlanInput, facts: SystemFacts, profile: DeviceProfile, f: GgufFile, adapters: GgufFile[]): MemoryPlan {
  const h = modelHparams(f);
  const notes: string[] = [];
  const trainCtx = h.contextLength > 0 ? h.contextLength : Infinity;
  let contextSize = input.contextSize ?? Math.min(profile.defaults.contextSize, trainCtx);
  if (!Number.isInteger(contextSize) || contextSize < 1) throw new RangeError(`context size must be a positive integer, got ${contextSize}`);
  if (contextSize > trainCtx) notes.push(`context ${contextSize} exceeds the model's training context ${h.contextLength}`);
  const kvCells = pad(contextSize, 256);
  // node-llama-cpp pads the context to the KV cells and takes its batch from that.
  const batchSize = input.batchSize ?? Math.min(profile.defaults.batchSize, kvCells);
  const microBatch = Math.min(batchSize, 512, kvCells);
  const sequences = input.sequences ?? 1;
  const flashAttention = input.flashAttention ?? profile.defaults.flashAttention;
  const threads = input.threads ?? defaultThreads(profile, facts);

  const w = layerBytes(f, h.nLayer);
  const inputLayer = w.other.get("token_embd.weight") ?? 0;
  const outputOwn = (w.other.get("output.weight") ?? 0) + (w.other.get("output_norm.weight") ?? 0);
  const tied = !f.tensor("output.weight");
  const outputLayer = tied ? outputOwn + inputLayer : outputOwn;
  const adaptersPerLayer = new Array<number>(h.nLayer).fill(0);
  let adapterBytes = 0;
  const adapterList = adapters.map((a) => {
    const ab = layerBytes(a, h.nLayer);
    ab.perLayer.forEach((b, i) => { adaptersPerLayer[i] += b; });
    adapterBytes += ab.total;
    return { path: a.path, bytes: ab.total };
  });
  const nEmbdKv = h.nHeadKv * h.headDim;
  const kvPerLayer = kvCells * nEmbdKv * 2 * 2; // K and V, f16
  const kvCache = kvPerLayer * h.nLayer;
  const computeBytes = computeBufferBytes(h, kvCells, microBatch, flashAttention);
  const output = h.nVocab * 4 * sequences;
  const total = w.total + adapterBytes + kvCache + computeBytes + output;
  const parameters = f.tensors.reduce((s, t) => s + t.nElements, 0);

  const reserve = profile.memory.reserveBytes;
  const macos = facts.os === "darwin";
  // macOS counts its file cache as used memory, so "free" understates what a process can get.
  const available = macos ? facts.memory.totalBytes : facts.memory.availableBytes;
  if (macos) notes.push("macOS reports free memory poorly: the plan assumes other programs fit in the reserve");
  const usable = Math.max(0, available - reserve);
  const gpuFound = profile.gpu !== false && facts.gpu.type === profile.gpu;
  if (profile.gpu !== false && !gpuFound) notes.push(`no ${profile.gpu} backend found: planned for the CPU (see the profile's build steps)`);

  const repackable = f.tensors.some((t) => t.name.startsWith("blk.") && ["Q4_0", "Q8_0", "IQ4_NL", "Q4_K"].includes(t.type.name));
  if (!gpuFound && facts.arch === "x64" && repackable) {
    notes.push("on x86 CPUs llama.cpp repacks these weights for AVX2/AVX-512/AMX kernels: the mapped file pages also show in the " +
      "resident size (page cache the OS can reclaim), so RSS reads up to the weights twice");
  }
  const base: Omit<MemoryPlan, "gpuLayers" | "placement" | "budget" | "maxContextSize"> = {
    profile: profile.name, memoryModel: profile.memory.model, backend: gpuFound ? String(profile.gpu) : "cpu",
    model: { path: f.path, architecture: h.architecture, nLayer: h.nLayer, nEmbd: h.nEmbd, nHeadKv: h.nHeadKv,
      headDim: h.headDim, nVocab: h.nVocab, contextLength: h.contextLength, parameters },
    adapters: adapterList, contextSize, kvCells, batchSize, microBatch, flashAttention, threads,
    bytes: { weights: w.total, weightsPerLayer: w.perLayer, inputLayer, outputLayer, adapters: adapterBytes, adaptersPerLayer,
      kvCache, kvPerLayer, compute: computeBytes, output, total },
    notes,
  };
  // Largest context that fits the pool, everything else unchanged (FA off makes compute grow with it too).
  const maxCtxFor = (pool: number) => {
    let lo = 0;
    let hi = Math.max(256, pad(Math.min(trainCtx, 1 << 20), 256));
    const need = (cells: number) => w.total + adapterBytes + cells * nEmbdKv * 4 * h.nLayer +
      computeBufferBytes(h, cells, Math.min(batchSize, 512, cells), flashAttention) + output;
    if (need(256) > pool) return 0;
    while (hi - lo > 256) {
      const mid = pad((lo + hi) / 2, 256);
      if (need(mid) <= pool) lo = mid; else hi = mid;
    }
    return need(hi) <= pool ? hi : Math.max(lo, 256);
  };

  const perLayerGpu = (i: number) => w.perLayer[i] + adaptersPerLayer[i] + kvPerLayer;
  const wantLayers = input.gpuLayers ?? (!gpuFound ? 0 : profile.defaults.gpuLayers === "max" || profile.defaults.gpuLayers === "fit"
    ? h.nLayer + 1 : profile.defaults.gpuLayers);
  if (input.gpuLayers !== undefined && input.gpuLayers > 0 && !gpuFound) notes.push("gpuLayers requested without a GPU backend");

  // Offloads as llama.cpp does for n_gpu_layers = k: the output layer first, then the last k - 1 repeating layers,
  // each only while it fits `room` beside the GPU compute buffer.
  const offload = (room: number, cap: number) => {
    const none = { layers: 0, bytes: 0, layerBytesOnGpu: 0, outputOnGpu: false, weights: 0, adapters: 0, kv: 0 };
    if (cap <= 0 || room < computeBytes + outputLayer) return none;
    const g = { layers: 1, bytes: computeBytes + outputLayer, layerBytesOnGpu: 0, outputOnGpu: true, weights: outputLayer, adapters: 0, kv: 0 };
    for (let i = h.nLayer - 1; i >= 0 && g.layers < Math.min(cap, h.nLayer + 1); i--) {
      if (g.bytes + perLayerGpu(i) > room) break;
      g.bytes += perLayerGpu(i);
      g.layerBytesOnGpu += perLayerGpu(i);
      g.weights += w.perLayer[i];
      g.adapters += adaptersPerLayer[i];
      g.kv += kvPerLayer;
      g.layers++;
    }
    return g;
  };

  if (profile.memory.model === "cpu" || profile.memory.model === "unified" || !gpuFound) {
    const pool = usable;
    const where = profile.memory.model === "unified" ? "unified memory" : "host memory";
    let gpuUsable: number | undefined;
    let g = { layers: 0, bytes: 0, layerBytesOnGpu: 0, outputOnGpu: false };
    if (profile.memory.model === "unified" && gpuFound) {
      const share = profile.memory.gpuShareOfTotal ?? 1;
      const limit = facts.gpu.vram && facts.gpu.vram.total > 0 ? Math.min(facts.gpu.vram.total, facts.memory.totalBytes * share)
        : facts.memory.totalBytes * share;
      gpuUsable = Math.max(0, Math.min(limit, pool));
      g = offload(gpuUsable, wantLayers);
      if (g.layers < h.nLayer + 1 && wantLayers > g.layers) notes.push(`only ${g.layers} of ${h.nLayer + 1} layers fit the GPU's share of memory`);
    }
    // CUDA on Tegra copies a tied output matrix (token_embd) into device memory, which is the same RAM;
    // Metal maps the file's pages instead, so there it costs nothing extra.
    const tiedCopy = g.outputOnGpu && tied && profile.gpu === "cuda" ? inputLayer : 0;
    if (tiedCopy) notes.push(`the tied output matrix is copied to the GPU: ${(tiedCopy / 2 ** 20).toFixed(1)} MiB more of the same memory`);
    const need = total + tiedCopy;
    const plan: MemoryPlan = { ...base, gpuLayers: g.layers,
      placement: { gpuBytes: g.bytes, hostBytes: need },
      budget: { totalBytes: facts.memory.totalBytes, availableBytes: available, reserveBytes: reserve, usableBytes: pool,
        ...(gpuUsable !== undefined ? { gpuUsableBytes: gpuUsable } : {}) },
      maxContextSize: maxCtxFor(pool) };
    if (need > pool) throw new DoesNotFitError(where, need, pool, plan);
    return plan;
  }

  // Discrete GPU: offloaded layers and the GPU compute buffer in VRAM, the rest in host memory.
  const vram = facts.gpu.vram;
  const gpuUsable = Math.max(0, (vram?.free ?? 0) - (profile.memory.gpuReserveBytes ?? 0));
  const g = offload(gpuUsable, wantLayers);
  if (g.layers <= h.nLayer && wantLayers > g.layers) notes.push(`${g.layers} of ${h.nLayer + 1} layers fit in VRAM; the rest run on the CPU`);
  // llama.cpp keeps its compute buffer on the GPU even with no layers there (large batches are offloaded op by op).
  const gpuCompute = g.layers > 0 || gpuUsable >= computeBytes;
  const gpuBytes = g.layers > 0 ? g.bytes : gpuCompute ? computeBytes : 0;
  // The host keeps token_embd (a tied output layer is copied to the GPU), the layers left behind, and, when the
  // graph runs on the GPU, a pinned staging buffer: the attention mask (f16 with flash attention) and the input
  // embeddings twice (measured on a Vulkan device within 25%).
  const hostCompute = gpuCompute ? Math.ceil(kvCells * microBatch * (flashAttention ? 2 : 4) + 2 * microBatch * h.nEmbd * 4) : computeBytes;
  let hostNeed = w.total + adapterBytes + kvCache - g.layerBytesOnGpu - (g.outputOnGpu ? outputOwn : 0) + hostCompute + output;
  if (facts.gpu.softwareDevice) {
    // A CPU-type device (lavapipe) allocates its "VRAM" from host memory: count it there too.
    hostNeed += gpuBytes;
    notes.push(`${facts.gpu.devices.join(", ")} is a software device: its ${(gpuBytes / 2 ** 20).toFixed(1)} MiB of device memory is host memory`);
  }
  const gpuParts: PlacedBytes = { weights: g.weights, adapters: g.adapters, kvCache: g.kv, compute: gpuCompute ? computeBytes : 0 };
  const layerWeightsOnGpu = g.weights - (g.outputOnGpu ? outputLayer : 0);
  const hostParts: PlacedBytes = { weights: w.total - layerWeightsOnGpu - (g.outputOnGpu ? outputOwn : 0),
    adapters: adapterBytes - g.adapters, kvCache: kvCache - g.kv, compute: hostCompute + output };
  const plan: MemoryPlan = { ...base, gpuLayers: g.layers,
    placement: { gpuBytes, hostBytes: hostNeed, gpu: gpuParts, host: hostParts },
    budget: { totalBytes: facts.memory.totalBytes, availableBytes: available, reserveBytes: reserve, usableBytes: usable,
      gpuUsableBytes: gpuUsable },
    maxContextSize: maxCtxFor(usable + gpuUsable) };
  if (hostNeed > usable) throw new DoesNotFitError("host memory", hostNeed, usable, plan);
  return plan;
}
