// lora-edge/web: the Runtime API in a browser page, over the wasm engine running in a worker (threads when cross-origin isolated).
import { Generation, type GenerationResult } from "../runtime/generation.js";
import type { GenerateOptions } from "../runtime/session.js";
import type { WebAdapterInfo, WebRuntimeStats } from "./engine.js";
import { WebRuntimeError, type GenerationEvent, type Reply, type Request } from "./protocol.js";
import type { WebSource } from "./sources.js";

export { WebRuntimeError } from "./protocol.js";
export { Generation } from "../runtime/generation.js";
export type { GenerationResult, GenerationTimings, FinishReason } from "../runtime/generation.js";
export type { GenerateOptions } from "../runtime/session.js";
export type { WebAdapterInfo, WebRuntimeStats } from "./engine.js";
export type { WebSource } from "./sources.js";

export interface WebRuntimeOptions {
  /** The base model: a URL, an ArrayBuffer or typed array (copied to the worker), a Blob or a File. */
  model: WebSource;
  /** Name of the model in errors and stats (default: the File's name or the URL's last part). */
  name?: string;
  /** Threads: more than one needs a cross-origin isolated page (default: every core there, else 1). */
  threads?: number;
  /** Tokens per session context (default: min(2048, the model's training context)). */
  contextSize?: number;
  /** Adapter halves "f32" (default, exact) or "q8" (int8). */
  adapterPrecision?: "f32" | "q8";
  /** The engine worker script (default: engine-worker.js next to this module). */
  workerUrl?: string | URL;
  /** Folder the wasm builds are fetched from (default: the engine worker's folder). */
  wasmBase?: string | URL;
}

interface PageWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: "message" | "error", listener: (ev: { data?: unknown; message?: string }) => void): void;
}
type WorkerClass = new (url: string | URL, options: { type: "module"; name?: string }) => PageWorker;

/** URLs are resolved against the page, since the worker lives elsewhere. */
function forWorker(src: WebSource): WebSource {
  if (src instanceof URL) return src.href;
  if (typeof src === "string") {
    const here = (globalThis as { location?: { href: string } }).location?.href;
    return here ? new URL(src, here).href : src;
  }
  return src;
}

/** One loaded base: adapters checked and loaded once, sessions that swap, rescale and mix them live. */
export class Runtime {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly streams = new Map<number, Generation>();
  private disposed = false;
  readonly adapters: WebAdapters;
  /** The stats at open: threads, threads mode and load times. */
  opened!: WebRuntimeStats;

  private constructor(private readonly worker: PageWorker) {
    this.adapters = new WebAdapters(this);
    worker.addEventListener("message", (ev) => this.receive(ev.data as Reply | GenerationEvent));
    worker.addEventListener("error", (ev) => this.failAll(new Error(`engine worker failed: ${ev.message ?? "error"}`)));
  }

  /** Starts the engine worker and opens the base (GgufError, seen as WebRuntimeError, names file, field and offset). */
  static async open(o: WebRuntimeOptions): Promise<Runtime> {
    const W = (globalThis as { Worker?: WorkerClass }).Worker;
    if (!W) throw new Error("this page has no Web Workers");
    const url = o.workerUrl ?? new URL("./engine-worker.js", import.meta.url);
    const rt = new Runtime(new W(url, { type: "module", name: "lora-edge engine" }));
    try {
      const args = { ...o, model: forWorker(o.model), workerUrl: undefined, wasmBase: o.wasmBase === undefined ? undefined : String(forWorker(o.wasmBase)) };
      rt.opened = (await rt.call("open", args)) as WebRuntimeStats;
      return rt;
    } catch (e) {
      rt.worker.terminate();
      throw e;
    }
  }

  /** Threads computing (1 when the page is not cross-origin isolated). */
  get threads(): number {
    return this.opened.threads;
  }

  get threadsMode(): "workers" | "single" {
    return this.opened.threadsMode;
  }

  /** A session over the base with its own context; `adapters` is its starting set, e.g. { A: 0.5, B: 0.5 }. */
  session(options: { adapters?: Record<string, number> | readonly string[]; contextSize?: number } = {}): WebSession {
    const sid = this.nextId++;
    return new WebSession(this, sid, this.call("session", { sid, options }));
  }

  /** Load, swap and token timings, threads and memory. */
  stats(): Promise<WebRuntimeStats> {
    return this.call("stats", {}) as Promise<WebRuntimeStats>;
  }

  /** Frees everything and stops the engine worker. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    try {
      await this.call("dispose", {});
    } finally {
      this.disposed = true;
      this.worker.terminate();
      this.failAll(new Error("the runtime was disposed"));
    }
  }

  /** @internal */
  call(op: Request["op"], args: Record<string, unknown>): Promise<unknown> {
    if (this.disposed) return Promise.reject(new Error("the runtime was disposed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args } satisfies Request);
    });
  }

  /** @internal */
  stream(gen: number, g: Generation): void {
    this.streams.set(gen, g);
  }

  /** @internal */
  newId(): number {
    return this.nextId++;
  }

  private receive(m: Reply | GenerationEvent): void {
    if ("gen" in m) {
      const g = this.streams.get(m.gen);
      if (!g) return;
      if ("piece" in m) g.push(m.piece);
      else if ("result" in m) {
        this.streams.delete(m.gen);
        g.finish(m.result as GenerationResult);
      } else {
        this.streams.delete(m.gen);
        g.fail(new WebRuntimeError(m.error));
      }
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.ok) c.resolve(m.value);
    else c.reject(new WebRuntimeError(m.error));
  }

  private failAll(e: Error): void {
    for (const c of this.calls.values()) c.reject(e);
    this.calls.clear();
    for (const g of this.streams.values()) g.fail(e);
    this.streams.clear();
  }
}

/** The runtime's adapters: each checked against the base by the GGUF reader and adapter check, then loaded once. */
export class WebAdapters {
  constructor(private readonly rt: Runtime) {}

  /**
   * Load an adapter under `name` from a URL, ArrayBuffer, Blob or File. A damaged or mismatched file is refused
   * with a WebRuntimeError naming the file and the field or tensor; nothing loaded changes.
   */
  load(name: string, source: WebSource, options: { scale?: number; fileName?: string } = {}): Promise<WebAdapterInfo> {
    return this.rt.call("loadAdapter", { name, source: forWorker(source), ...options }) as Promise<WebAdapterInfo>;
  }

  /** Unload: removed from every session's set first (a running generation goes on without it), then freed. */
  async unload(name: string): Promise<void> {
    await this.rt.call("unloadAdapter", { name });
  }

  list(): Promise<WebAdapterInfo[]> {
    return this.rt.call("listAdapters", {}) as Promise<WebAdapterInfo[]>;
  }
}

/** A session: its own context over the base, with an adapter set that can change while it generates. */
export class WebSession {
  private closed = false;
  constructor(
    private readonly rt: Runtime,
    private readonly sid: number,
    private readonly created: Promise<unknown>,
  ) {
    created.catch(() => undefined);
  }

  /** Streams text pieces (`for await`); `result` settles with the text, tokens, timings and adapter changes. */
  generate(prompt: string | readonly number[], options: Omit<GenerateOptions, "signal"> = {}): Generation {
    const g = new Generation();
    const gen = this.rt.newId();
    this.rt.stream(gen, g);
    g.abortSignal.addEventListener("abort", () => void this.rt.call("abort", { gen }).catch(() => undefined));
    this.created.then(
      () => this.rt.call("generate", { sid: this.sid, gen, prompt, options }),
    ).catch((e) => g.fail(e));
    return g;
  }

  /** The whole result of a generation. */
  complete(prompt: string | readonly number[], options: Omit<GenerateOptions, "signal"> = {}): Promise<GenerationResult> {
    return this.generate(prompt, options).result;
  }

  /**
   * Swap, rescale or mix: the set in effect from the next token on (a running generation re-evaluates its
   * prompt and text so far under it). Resolves once applied.
   */
  async setAdapters(adapters: Record<string, number> | readonly string[]): Promise<void> {
    await this.created;
    await this.rt.call("setAdapters", { sid: this.sid, adapters });
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.created.catch(() => undefined);
    await this.rt.call("closeSession", { sid: this.sid });
  }
}
