// Native backend: llama.cpp through node-llama-cpp (Metal, CUDA, Vulkan or CPU), adapters swapped on live contexts.
import path from "node:path";
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";
import { BackendUnavailableError, ModelLoadError } from "../errors.js";
import { isSoftwareVulkanName, VULKAN_VISIBLE_DEVICES } from "../devices/vulkan.js";
import type {
  ActiveAdapter,
  Backend,
  BackendAdapter,
  BackendBatchContext,
  BackendContext,
  BackendMemory,
  BackendOpenOptions,
  BackendSequence,
  GpuChoice,
  GpuReport,
  SamplingOptions,
} from "./backend.js";
import { probeThreads, type ThreadProbe } from "./native-threads.js";

/** node-llama-cpp internals this backend relies on (pinned to 3.21.1); each is feature-detected. */
interface NativeLora {
  readonly filePath: string;
  readonly disposed: boolean;
  dispose(): Promise<void>;
}
interface ContextInternals {
  _setLoras?: (loras: { filePath: string; scale?: number }[]) => Promise<void>;
  _loraAdapters?: Set<NativeLora>;
}
interface ModelInternals {
  _getOrLoadLora?: (filePath: string) => Promise<NativeLora>;
  _loraAdapters?: Map<string, NativeLora>;
}

/** Whether this node-llama-cpp exposes what live swapping and adapter freeing need. */
export function nativeInternals(model: LlamaModel, context?: LlamaContext): { liveSwap: boolean; freeAdapters: boolean } {
  const m = model as unknown as ModelInternals;
  const c = context as unknown as ContextInternals | undefined;
  const freeAdapters = typeof m._getOrLoadLora === "function" && m._loraAdapters instanceof Map;
  const liveSwap = freeAdapters && (c === undefined || typeof c._setLoras === "function");
  return { liveSwap, freeAdapters };
}

/** A node-llama-cpp binding, and why it is not the one asked for (when it is not). */
interface SharedLlama {
  llama: Llama;
  note?: string;
}

const llamaCache = new Map<string, Promise<SharedLlama>>();

/** Why a Vulkan binary without a device is no GPU: ggml skips CPU-type devices unless they are named. */
const NO_VULKAN_DEVICE = "node-llama-cpp's Vulkan binary loaded, but ggml uses no Vulkan device (CPU-type devices such as " +
  `lavapipe are skipped unless ${VULKAN_VISIBLE_DEVICES} names them)`;

/**
 * One llama.cpp binding per (gpu, threads) per process; models and contexts are per runtime. node-llama-cpp's
 * "auto" takes its Vulkan binary wherever the Vulkan loader is installed, even when ggml then uses no device:
 * "auto" then takes the CPU binary instead, and asking for "vulkan" explicitly is an error that says why.
 */
function sharedLlama(gpu: GpuChoice, threads: number): Promise<SharedLlama> {
  const key = `${String(gpu)}:${threads}`;
  let p = llamaCache.get(key);
  if (!p) {
    p = (async () => {
      const llama = await getLlama({ gpu, build: "never", skipDownload: true, maxThreads: threads, logLevel: "error" as never, progressLogs: false });
      if (llama.gpu !== "vulkan" || (await llama.getGpuDeviceNames()).length > 0) return { llama };
      if (gpu === "vulkan") throw new Error(NO_VULKAN_DEVICE);
      const cpu = await sharedLlama(false, threads);
      return { llama: cpu.llama, note: `${NO_VULKAN_DEVICE}: running on the CPU backend` };
    })();
    llamaCache.set(key, p);
    p.catch(() => llamaCache.delete(key));
  }
  return p;
}

/** Why live swapping is off on an offloaded Vulkan model. */
export const VULKAN_LIVE_SWAP_NOTE = "adapter changes on a live context with layers on a Vulkan device corrupt memory in llama.cpp " +
  "(its scheduler re-reserve after llama_set_adapters_lora; reproduced on lavapipe): each change gets a new context instead";

class NativeAdapter implements BackendAdapter {
  constructor(
    readonly path: string,
    readonly handle: NativeLora | null,
  ) {}
  freed = false;
}

/** Tokens llama_decode took for a sequence: node-llama-cpp's meter splits them into those with logits ("output") and the rest. */
function decodedTokens(seq: LlamaContextSequence): number {
  return seq.tokenMeter.usedInputTokens + seq.tokenMeter.usedOutputTokens;
}

class NativeContext implements BackendContext {
  private ctx: LlamaContext;
  private seq: LlamaContextSequence;
  /** Tokens evaluated by contexts this one replaced (re-create path). */
  private evaluatedBefore = 0;
  constructor(
    private readonly backend: NativeBackend,
    ctx: LlamaContext,
    private readonly contextSize: number,
    readonly liveSwap: boolean,
  ) {
    this.ctx = ctx;
    this.seq = ctx.getSequence();
  }

  get cachedTokens(): readonly number[] {
    return this.seq.contextTokens;
  }

  get memoryBytes(): number {
    const m = this.ctx.memoryUsage;
    return m.ram + m.vram;
  }

  get evaluatedTokens(): number {
    return this.evaluatedBefore + decodedTokens(this.seq);
  }

  get llamaContext(): LlamaContext {
    return this.ctx;
  }

  async setAdapters(active: readonly ActiveAdapter[]): Promise<void> {
    const list = loraList(active);
    if (this.liveSwap) {
      await (this.ctx as unknown as ContextInternals)._setLoras!(list);
      return;
    }
    // Re-create path: a fresh context carries the new set (and an empty KV cache).
    const next = await this.backend.newLlamaContext(this.contextSize, list);
    const old = this.ctx;
    this.evaluatedBefore += decodedTokens(this.seq);
    this.ctx = next;
    this.seq = next.getSequence();
    await old.dispose();
  }

  async clear(): Promise<void> {
    await this.seq.clearHistory();
  }

  async truncate(n: number): Promise<void> {
    const end = this.seq.nextTokenIndex;
    if (n < end) await this.seq.eraseContextTokenRanges([{ start: n, end }]);
  }

  async evaluate(tokens: readonly number[]): Promise<void> {
    if (tokens.length === 0) throw new Error("evaluate: no tokens");
    await this.seq.evaluateWithoutGeneratingNewTokens(tokens.slice() as never);
  }

  async *sample(tokens: readonly number[], s: SamplingOptions): AsyncGenerator<number, void, void> {
    const it = this.seq.evaluate(tokens.slice() as never, {
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      minP: 0,
      seed: s.seed,
      yieldEogToken: true,
    });
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value as number;
      }
    } finally {
      await it.return(undefined);
    }
  }

  async nextLogProbs(tokens: readonly number[]): Promise<Float64Array> {
    const it = this.seq.evaluateWithMetadata(tokens.slice() as never, { probabilities: true }, { temperature: 0, yieldEogToken: true });
    let probs: Map<number, number> = new Map();
    try {
      const r = await it.next();
      if (!r.done) probs = r.value.probabilities as Map<number, number>;
    } finally {
      await it.return(undefined as never);
    }
    let n = this.backend.vocabSize;
    for (const tok of probs.keys()) n = Math.max(n, tok + 1);
    const out = new Float64Array(n).fill(-Infinity);
    for (const [tok, p] of probs) out[tok] = Math.log(p);
    return out;
  }

  async dispose(): Promise<void> {
    this.backend.contexts.delete(this);
    await this.ctx.dispose();
  }
}

/** The evaluation options of one generation (node-llama-cpp's sequence.evaluate). */
function evaluateOptions(s: SamplingOptions) {
  return { temperature: s.temperature, topK: s.topK, topP: s.topP, minP: 0, seed: s.seed, yieldEogToken: true };
}

/**
 * Several sequences in one llama.cpp context (one KV store, one compute buffer). Adapters apply to the whole
 * context, so the scheduler steps one set's sequences at a time and swaps live between steps. The advances of
 * one step are queued in the same tick, and node-llama-cpp's batching puts them into one llama_decode.
 */
class NativeBatchContext implements BackendBatchContext {
  readonly adapterScope = "context" as const;
  readonly mixedBatch = false;
  private readonly open = new Set<NativeSequence>();
  constructor(
    private readonly backend: NativeBackend,
    readonly llamaContext: LlamaContext,
    readonly slots: number,
    readonly contextSize: number,
  ) {}

  get memoryBytes(): number {
    const m = this.llamaContext.memoryUsage;
    return m.ram + m.vram;
  }

  async setAdapters(active: readonly ActiveAdapter[]): Promise<void> {
    await (this.llamaContext as unknown as ContextInternals)._setLoras!(loraList(active));
  }

  sequence(): BackendSequence {
    if (this.open.size >= this.slots) throw new Error(`all ${this.slots} sequences are in use`);
    const s = new NativeSequence(this.llamaContext.getSequence(), () => this.open.delete(s));
    this.open.add(s);
    return s;
  }

  async dispose(): Promise<void> {
    this.backend.contexts.delete(this);
    for (const s of [...this.open]) await s.release();
    await this.llamaContext.dispose();
  }
}

class NativeSequence implements BackendSequence {
  private it: AsyncGenerator<number, void, unknown> | null = null;
  constructor(
    private readonly seq: LlamaContextSequence,
    private readonly onRelease: () => void,
  ) {}

  get cachedTokens(): readonly number[] {
    return this.seq.contextTokens;
  }

  setAdapters(): void {
    throw new Error("native sequences share their context's adapter set");
  }

  async clear(): Promise<void> {
    await this.seq.clearHistory();
  }

  async truncate(n: number): Promise<void> {
    const end = this.seq.nextTokenIndex;
    if (n < end) await this.seq.eraseContextTokenRanges([{ start: n, end }]);
  }

  async evaluate(tokens: readonly number[]): Promise<void> {
    if (this.it) throw new Error("a generation is running on this sequence");
    if (tokens.length === 0) throw new Error("evaluate: no tokens");
    await this.seq.evaluateWithoutGeneratingNewTokens(tokens.slice() as never);
  }

  begin(tokens: readonly number[], sampling: SamplingOptions): void {
    if (this.it) throw new Error("a generation is already running on this sequence");
    this.it = this.seq.evaluate(tokens.slice() as never, evaluateOptions(sampling)) as AsyncGenerator<number, void, unknown>;
  }

  async advance(): Promise<number> {
    if (!this.it) throw new Error("no generation on this sequence");
    const r = await this.it.next();
    if (r.done) throw new Error("the sequence ended its generation");
    return r.value as number;
  }

  async end(): Promise<void> {
    const it = this.it;
    this.it = null;
    await it?.return(undefined);
  }

  async saveState(file: string): Promise<number> {
    return (await this.seq.saveStateToFile(file)).fileSize;
  }

  async loadState(file: string): Promise<void> {
    await this.seq.loadStateFromFile(file, { acceptRisk: true });
  }

  async release(): Promise<void> {
    await this.end();
    this.onRelease();
    if (!this.seq.disposed) this.seq.dispose();
  }
}

function loraList(active: readonly ActiveAdapter[]): { filePath: string; scale: number }[] {
  // llama.cpp keeps one scale per adapter object: sum the scales of entries sharing one loaded file.
  const byPath = new Map<string, number>();
  for (const a of active) {
    if (a.adapter.freed) throw new Error(`adapter ${a.adapter.path} was freed`);
    byPath.set(a.adapter.path, (byPath.get(a.adapter.path) ?? 0) + a.scale);
  }
  return [...byPath].map(([filePath, scale]) => ({ filePath, scale }));
}

export class NativeBackend implements Backend {
  readonly name = "native" as const;
  readonly contexts = new Set<{ readonly llamaContext: LlamaContext; dispose(): Promise<void> }>();
  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly modelPath: string,
    readonly threads: number,
    readonly timings: { initMs: number; modelLoadMs: number },
    private readonly internals: { liveSwap: boolean; freeAdapters: boolean },
    /** How `threads` was measured, when it was (`measureThreads` on a CPU model). */
    readonly threadProbe?: ThreadProbe,
    /** Set when the GPU asked for ("auto") is not used: says why. */
    readonly deviceNote?: string,
  ) {
    if (internals.liveSwap && llama.gpu === "vulkan" && model.gpuLayers > 0) {
      this.internals = { ...internals, liveSwap: false };
      this.liveSwapNote = VULKAN_LIVE_SWAP_NOTE;
    }
  }

  /** Why live swapping is off, when it is. */
  readonly liveSwapNote: string | undefined;

  static async open(o: BackendOpenOptions): Promise<NativeBackend> {
    const t0 = performance.now();
    let llama: Llama;
    let deviceNote: string | undefined;
    try {
      ({ llama, note: deviceNote } = await sharedLlama(o.gpu, o.threads));
    } catch (e) {
      throw new BackendUnavailableError(`native${o.gpu ? `/${o.gpu}` : ""}`, (e as Error).message, { cause: e });
    }
    if (o.gpu !== false && o.gpu !== "auto" && llama.gpu !== o.gpu) {
      // node-llama-cpp may fall back quietly (e.g. "metal" off Apple): asking for one GPU API means that one.
      throw new BackendUnavailableError(`native/${o.gpu}`, `node-llama-cpp found ${llama.gpu === false ? "only the CPU" : llama.gpu} instead`);
    }
    const t1 = performance.now();
    const modelPath = path.resolve(o.modelPath);
    let model: LlamaModel;
    try {
      model = await llama.loadModel({
        modelPath,
        ...(o.gpuLayers !== undefined ? { gpuLayers: o.gpuLayers } : {}),
        onLoadProgress: o.onProgress,
      });
    } catch (e) {
      throw new ModelLoadError(modelPath, (e as Error).message, { cause: e });
    }
    const t2 = performance.now();
    let probe: ThreadProbe | undefined;
    if (o.measureThreads && model.gpuLayers === 0 && o.threads > 1) {
      try {
        probe = await probeThreads(model, o.threads);
      } catch (e) {
        await model.dispose();
        throw new ModelLoadError(modelPath, `timing decode steps to choose threads failed: ${(e as Error).message}`, { cause: e });
      }
    }
    return new NativeBackend(llama, model, modelPath, probe?.threads ?? o.threads, { initMs: t1 - t0, modelLoadMs: t2 - t1 }, nativeInternals(model), probe, deviceNote);
  }

  get device(): string {
    return this.llama.gpu === false ? "cpu" : this.llama.gpu;
  }
  get liveSwapSupported(): boolean {
    return this.internals.liveSwap;
  }
  get canFreeAdapters(): boolean {
    return this.internals.freeAdapters;
  }
  get vocabSize(): number {
    const md = this.model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } };
    return md.tokenizer?.ggml?.tokens?.length ?? 0;
  }
  get trainContextSize(): number {
    return this.model.trainContextSize;
  }

  tokenize(text: string, addBos: boolean, special = false): number[] {
    const toks = this.model.tokenize(text, special) as number[];
    const bos = this.model.tokens.bos;
    return addBos && bos != null && this.model.tokens.shouldPrependBosToken ? [bos as number, ...toks] : toks;
  }

  detokenize(tokens: readonly number[], before?: readonly number[]): string {
    return this.model.detokenize(tokens as never, false, before as never);
  }

  isEndOfGeneration(token: number): boolean {
    return this.model.isEogToken(token as never);
  }

  async loadAdapter(file: string): Promise<BackendAdapter> {
    const resolved = path.resolve(file);
    const m = this.model as unknown as ModelInternals;
    if (this.internals.freeAdapters) {
      const handle = await m._getOrLoadLora!(resolved);
      return new NativeAdapter(resolved, handle);
    }
    // Public API only: a throwaway context makes llama.cpp load (and cache) the adapter.
    const ctx = await this.newLlamaContext(16, [{ filePath: resolved, scale: 0 }]);
    await ctx.dispose();
    return new NativeAdapter(resolved, null);
  }

  async freeAdapter(adapter: BackendAdapter): Promise<void> {
    const a = adapter as NativeAdapter;
    if (a.freed) return;
    a.freed = true;
    if (!a.handle) return; // without the internals llama.cpp keeps it until the model is disposed
    const m = this.model as unknown as ModelInternals;
    if (m._loraAdapters?.get(a.path) === a.handle) m._loraAdapters.delete(a.path);
    for (const c of this.contexts) (c.llamaContext as unknown as ContextInternals)._loraAdapters?.delete(a.handle);
    await a.handle.dispose();
  }

  /** A llama.cpp context with one sequence and the given adapters (public API). */
  async newLlamaContext(contextSize: number, loras: { filePath: string; scale: number }[]): Promise<LlamaContext> {
    return this.model.createContext({
      contextSize,
      sequences: 1,
      threads: this.threads,
      ...(loras.length > 0 ? { lora: { adapters: loras } } : {}),
    });
  }

  async createContext(o: { contextSize: number; adapters: readonly ActiveAdapter[]; live: boolean }): Promise<BackendContext> {
    const ctx = await this.newLlamaContext(o.contextSize, loraList(o.adapters));
    const live = o.live && this.internals.liveSwap && nativeInternals(this.model, ctx).liveSwap;
    const c = new NativeContext(this, ctx, o.contextSize, live);
    this.contexts.add(c);
    return c;
  }

  async createBatchContext(o: { slots: number; contextSize: number }): Promise<BackendBatchContext> {
    if (!nativeInternals(this.model).liveSwap) {
      throw new BackendUnavailableError("native", "batched serving needs live adapter swaps, which this node-llama-cpp does not expose");
    }
    const ctx = await this.model.createContext({ contextSize: o.contextSize, sequences: o.slots, threads: this.threads });
    if (!nativeInternals(this.model, ctx).liveSwap) {
      await ctx.dispose();
      throw new BackendUnavailableError("native", "batched serving needs live adapter swaps, which this node-llama-cpp does not expose");
    }
    const c = new NativeBatchContext(this, ctx, o.slots, o.contextSize);
    this.contexts.add(c);
    return c;
  }

  async memory(): Promise<BackendMemory> {
    const rss = process.memoryUsage().rss;
    const gpu = await this.gpuReport().catch(() => undefined);
    return gpu ? { rss, vramTotal: gpu.vram.total, vramUsed: gpu.vram.used, gpu } : { rss };
  }

  /** The GPU the model runs on, its layers there and llama.cpp's allocations on it; undefined on the CPU. */
  async gpuReport(): Promise<GpuReport | undefined> {
    const api = this.llama.gpu;
    if (api === false) return undefined;
    const [v, devices] = await Promise.all([this.llama.getVramState(), this.llama.getGpuDeviceNames()]);
    let contextBytes = 0;
    let hostContextBytes = 0;
    for (const c of this.contexts) {
      const m = c.llamaContext.memoryUsage;
      contextBytes += m.vram;
      hostContextBytes += m.ram;
    }
    const m = this.model.memoryUsage;
    return { api, devices, software: devices.length > 0 && devices.every(isSoftwareVulkanName),
      layers: this.model.gpuLayers, totalLayers: this.model.fileInsights.totalLayers,
      modelBytes: m.vram, contextBytes, hostModelBytes: m.ram, hostContextBytes,
      vram: { total: v.total, used: v.used, free: v.free } };
  }

  async dispose(): Promise<void> {
    for (const c of [...this.contexts]) await c.dispose();
    await this.threadProbe?.settled;
    await this.model.dispose();
  }
}
