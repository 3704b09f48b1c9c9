// Runtime: one base model loaded once, a registry of validated adapters, and sessions that swap them live.
import type { Backend, GpuChoice, GpuReport } from "../backends/backend.js";
import { openBackend } from "./open-backend.js";
import { AdapterNameError, BackendUnavailableError, ChatTemplateError, DisposedError, InvalidArgumentError } from "../errors.js";
import { ChatTemplate, type ChatMessage } from "./chat-template.js";
import { openGguf, type GgufFile } from "../gguf/reader.js";
import type { SystemFacts } from "../devices/facts.js";
import type { MemoryPlan } from "../devices/plan.js";
import { applyDevicePlan } from "./device-plan.js";
import { AdapterRegistry } from "./adapters.js";
import { defaultModelPath } from "../paths.js";
import { UsageRecorder, type UsageStats } from "./usage.js";
import type { GenerationResult } from "./generation.js";
import { SessionPool, type PoolOptions } from "./pool.js";
import { Scheduler, type SchedulerHost, type SchedulerOptions } from "./scheduler.js";
import { Session, type SessionHost, type SessionOptions } from "./session.js";
import { chooseThreads } from "./threads.js";
import { trainingData } from "./training.js";
import { trainLora, type TrainEvent, type TrainRunOptions } from "../train/run.js";

/** rt.train's options: the run's options on this runtime's base, with data files instead of sequences. */
export interface RuntimeTrainOptions extends Omit<TrainRunOptions, "model" | "train" | "eval"> {
  /** Training data: plain text, or JSONL of {"prompt","completion"} or {"messages":[...]}. */
  readonly data: string;
  /** Held-out data file; else `evalSplit` of the data is held out (default 0). */
  readonly evalFile?: string;
  readonly evalSplit?: number;
}

export interface RuntimeOptions {
  /** Base model GGUF (default: the embedded stories260K in the package's gguf/ folder). */
  model?: string;
  /** "native" (llama.cpp), "wasm" (lora-edge's own CPU engine), or "auto": native, else wasm when no native binary loads. */
  backend?: "native" | "auto" | "wasm";
  /** GPU API for the native backend: "auto" uses Metal, CUDA or Vulkan where present, else the CPU. */
  gpu?: GpuChoice;
  /**
   * CPU threads, at most the cores this process may use (more is lowered, with a notice). Default: the count
   * up to those cores (or the device plan's threads) that decodes fastest on the loaded model, measured at open.
   */
  threads?: number;
  /** Tokens per session context (default: min(2048, the model's training context)). */
  contextSize?: number;
  /** "live" (default when available) swaps adapters on the running context; "recreate" builds a new context. */
  swap?: "auto" | "live" | "recreate";
  /**
   * Device profile: "auto" detects this machine's, or a profile name from devices/. Its memory plan sets the
   * GPU API, GPU layers, threads and context size (options given here still win) and refuses a model that
   * does not fit (DoesNotFitError) before anything is loaded. The plan is kept in `rt.plan`.
   */
  device?: string;
  /** System facts for `device` instead of this machine's (recorded facts, tests). */
  facts?: SystemFacts;
  /** Layers offloaded to the GPU (llama.cpp's n_gpu_layers); default: the device plan's, else llama.cpp's. */
  gpuLayers?: number;
  /** Wasm engine only: adapter halves "f32" (default, exact) or "q8" (int8, a quarter of the decode-time cost). */
  adapterPrecision?: "f32" | "q8";
  onProgress?: (progress: number) => void;
}

export interface RuntimeStats extends UsageStats {
  backend: string;
  device: string;
  /** The device profile the runtime was planned for (only with the `device` option). */
  profile?: string;
  model: string;
  threads: number;
  contextSize: number;
  swapMode: "live" | "recreate";
  load: { backendInitMs: number; modelLoadMs: number; totalMs: number };
  sessions: number;
  /** `gpu`: the GPU, its layers and llama.cpp's bytes on it (as of the last adapter load; `rt.backend.memory()` for now). */
  memory: { rss: number; vramTotal?: number; vramUsed?: number; gpu?: GpuReport };
}

/** The context sizes a runtime accepts (tokens per session). */
export const CONTEXT_SIZE_LIMITS = Object.freeze({ min: 8, max: 1 << 20 });

export class Runtime implements SessionHost, SchedulerHost {
  readonly adapters: AdapterRegistry;
  readonly contextSize: number;
  readonly liveSwap: boolean;
  private readonly openSessions = new Set<Session>();
  private readonly pools = new Set<SessionPool>();
  private readonly schedulers = new Set<Scheduler>();
  private readonly usage = new UsageRecorder();
  private vram: { vramTotal?: number; vramUsed?: number; gpu?: GpuReport } = {};
  private template: ChatTemplate | null | undefined;
  private disposed = false;
  /** Set when the backend or GPU used is not the one asked for (e.g. "auto" fell back to the wasm engine, or found no usable GPU): says why. */
  backendNotice: string | undefined;
  /** What to tell the user about how the runtime was opened: threads lowered to the usable cores, a backend fallback. */
  notices: string[] = [];
  /** The device plan the runtime was opened with (only with the `device` option). */
  plan: MemoryPlan | undefined;

  private constructor(
    readonly backend: Backend,
    readonly base: GgufFile,
    readonly threads: number,
    options: RuntimeOptions,
  ) {
    this.contextSize = options.contextSize ?? Math.min(2048, backend.trainContextSize || 2048);
    const mode = options.swap ?? "auto";
    this.liveSwap = mode !== "recreate" && backend.liveSwapSupported;
    if (mode === "live" && !backend.liveSwapSupported) {
      throw new BackendUnavailableError(backend.name, backend.liveSwapNote ?? "live adapter swapping is not supported by this node-llama-cpp");
    }
    this.adapters = new AdapterRegistry({
      backend,
      base,
      sessions: () => this.openSessions,
      ensureOpen: () => this.ensureOpen(),
      beforeUnload: async (name, freed) => {
        if (!freed) return;
        const err = new AdapterNameError(name, `adapter "${name}" was unloaded`);
        await Promise.all([...this.schedulers].map((s) => s.dropAdapter(freed, err)));
      },
      recordAdapterLoad: (name, ms) => {
        this.usage.recordAdapterLoad(name, ms);
        void this.refreshVram();
      },
    });
  }

  /** Load the base model once (checked by our GGUF reader first, then by llama.cpp). */
  static async open(options: RuntimeOptions = {}): Promise<Runtime> {
    const kind = options.backend ?? "auto";
    if (kind !== "native" && kind !== "auto" && kind !== "wasm") throw new InvalidArgumentError(`unknown backend "${String(kind)}"`);
    if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) throw new InvalidArgumentError("threads must be a whole number >= 1");
    const { min, max } = CONTEXT_SIZE_LIMITS;
    if (options.contextSize !== undefined && (!Number.isInteger(options.contextSize) || options.contextSize < min || options.contextSize > max)) {
      throw new InvalidArgumentError(`contextSize must be a whole number from ${min} to ${max}`);
    }
    if (options.gpuLayers !== undefined && (!Number.isInteger(options.gpuLayers) || options.gpuLayers < 0)) {
      throw new InvalidArgumentError("gpuLayers must be a whole number >= 0");
    }
    if (options.device !== undefined && (typeof options.device !== "string" || options.device === "")) {
      throw new InvalidArgumentError(`device must be "auto" or a profile name`);
    }
    const modelPath = options.model ?? defaultModelPath();
    const base = openGguf(modelPath); // GgufError names file, field and offset
    try {
      const device = options.device === undefined ? undefined : await applyDevicePlan({
        device: options.device, base, facts: options.facts, contextSize: options.contextSize,
        threads: options.threads, gpuLayers: options.gpuLayers, gpu: options.gpu,
      });
      const threads = chooseThreads(options.threads, device?.threads);
      const { backend, fallbackReason } = await openBackend(kind, {
        modelPath, gpu: device?.gpu ?? options.gpu ?? "auto", threads: threads.threads, measureThreads: threads.measure,
        gpuLayers: device?.gpuLayers ?? options.gpuLayers, onProgress: options.onProgress, gguf: base, adapterPrecision: options.adapterPrecision,
      });
      let rt: Runtime;
      try {
        rt = new Runtime(backend, base, backend.threads, { ...options, contextSize: device?.contextSize ?? options.contextSize });
      } catch (e) {
        await backend.dispose(); // e.g. swap "live" where the backend cannot: the model is not left loaded
        throw e;
      }
      rt.plan = device?.plan;
      rt.backendNotice = fallbackReason ? `no native backend (${fallbackReason}); running on the wasm engine` : backend.deviceNote;
      rt.notices = [threads.notice, rt.backendNotice].filter((n): n is string => n !== undefined);
      await rt.refreshVram();
      return rt;
    } catch (e) {
      base.close();
      throw e;
    }
  }

  private ensureOpen(): void {
    if (this.disposed) throw new DisposedError("runtime");
  }

  get modelPath(): string {
    return this.backend.modelPath;
  }

  /** A new session (its context is created on first use, or by `ready()`). */
  session(options: SessionOptions = {}): Session {
    this.ensureOpen();
    const s = new Session(this, options);
    this.openSessions.add(s);
    return s;
  }

  /**
   * A scheduler: many generations at once over this base, each with its own adapter set, batched by set in one
   * context, with a bounded queue and KV reuse keyed by adapter set (see Scheduler).
   */
  scheduler(options: SchedulerOptions = {}): Scheduler {
    this.ensureOpen();
    const s = new Scheduler(this, options);
    this.schedulers.add(s);
    return s;
  }

  /** A pool keyed by adapter set over a scheduler: `maxSessions` sets keep their KV states live, more wait. */
  pool(options: PoolOptions = {}): SessionPool {
    this.ensureOpen();
    const p = new SessionPool(
      { scheduler: (o) => this.scheduler(o), defaultScale: (n) => this.defaultScale(n), isLoaded: (n) => this.adapters.has(n) },
      options,
    );
    this.pools.add(p);
    return p;
  }

  /**
   * Trains a LoRA adapter on this runtime's base (in the wasm core, whatever the serving backend): an async
   * iterator of step events, ending with a done event holding the adapter. `rt.adapters.add(name, done.adapter)`
   * then applies it to sessions without a file on the wasm backend (a temp GGUF on the native one).
   */
  train(options: RuntimeTrainOptions): AsyncGenerator<TrainEvent, void, void> {
    this.ensureOpen();
    const data = trainingData(this.base, options.data, { ctx: options.ctx, evalFile: options.evalFile, evalSplit: options.evalSplit, seed: options.seed });
    return trainLora({ ...options, model: this.modelPath, train: data.train, eval: data.eval });
  }

  /** The base's chat template (`tokenizer.chat_template`), or null when the model has none. */
  get chatTemplate(): ChatTemplate | null {
    if (this.template === undefined) this.template = ChatTemplate.fromGguf(this.base);
    return this.template;
  }

  /**
   * The prompt of a chat, from the model's own template: the text, and its tokens with the template's special
   * tokens read as such and BOS added where the vocabulary wants it and the template did not write it.
   * Throws ChatTemplateError when the model has no template (completion prompts still work).
   */
  chatPrompt(messages: readonly ChatMessage[]): { text: string; tokens: number[] } {
    const t = this.chatTemplate;
    if (!t) throw new ChatTemplateError(`${this.modelPath} has no chat template (tokenizer.chat_template); use a plain completion prompt`);
    const text = t.render(messages);
    const tokens = this.backend.tokenize(text, false, true);
    const bos = this.backend.tokenize("", true, false);
    if (bos.length > 0 && tokens[0] !== bos[0]) tokens.unshift(bos[0]);
    return { text, tokens };
  }

  /** Open sessions. */
  get sessions(): readonly Session[] {
    return [...this.openSessions];
  }

  /** @internal */
  resolveAdapter(name: string) {
    return this.adapters.handle(name);
  }
  /** @internal */
  defaultScale(name: string): number {
    return this.adapters.defaultScale(name);
  }
  /** @internal */
  invocation(name: string): readonly number[] | undefined {
    return this.adapters.invocation(name);
  }
  /** @internal */
  recordSwap(ms: number, live: boolean): void {
    this.usage.recordSwap(ms, live);
  }
  /** @internal */
  recordTokens(r: GenerationResult): void {
    this.usage.recordTokens(r);
  }
  /** @internal */
  sessionClosed(s: Session): void {
    this.openSessions.delete(s);
  }
  /** @internal */
  schedulerClosed(s: Scheduler): void {
    this.schedulers.delete(s);
  }

  private async refreshVram(): Promise<void> {
    const m = await this.backend.memory();
    this.vram = { vramTotal: m.vramTotal, vramUsed: m.vramUsed, ...(m.gpu ? { gpu: m.gpu } : {}) };
  }

  /** Load, swap and token timings, and memory. */
  stats(): RuntimeStats {
    const b = this.backend;
    return {
      backend: b.name,
      device: b.device,
      ...(this.plan ? { profile: this.plan.profile } : {}),
      model: b.modelPath,
      threads: this.threads,
      contextSize: this.contextSize,
      swapMode: this.liveSwap ? "live" : "recreate",
      load: { backendInitMs: b.timings.initMs, modelLoadMs: b.timings.modelLoadMs, totalMs: b.timings.initMs + b.timings.modelLoadMs },
      ...this.usage.stats(),
      sessions: this.openSessions.size,
      memory: { rss: process.memoryUsage().rss, ...this.vram },
    };
  }

  /**
   * Dispose every scheduler, pool and session (running generations stop after their current token, waiting
   * ones fail with DisposedError), free every adapter, then the model. Later calls throw DisposedError.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...[...this.pools].map((p) => p.dispose()), ...[...this.schedulers].map((s) => s.dispose()), ...[...this.openSessions].map((s) => s.dispose())]);
    this.pools.clear();
    await this.adapters.clear();
    await this.backend.dispose();
    this.base.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
