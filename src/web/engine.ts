// The web runtime's engine side (runs in a worker): one base on the wasm backend, checked adapters, live sessions.
import { WasmBackend } from "../backends/wasm.js";
import type { BackendAdapter } from "../backends/backend.js";
import { sharedMemoryAllowed, browser } from "../core/browser-api.js";
import { AdapterLoadError, AdapterNameError, InvalidArgumentError } from "../errors.js";
import { adapterCheckError, checkAdapter } from "../gguf/adapter.js";
import { adapterMeta } from "../gguf/metadata.js";
import { parseGguf, type GgufFile } from "../gguf/reader.js";
import type { GenerationResult } from "../runtime/generation.js";
import { Session, type SessionHost, type SessionOptions } from "../runtime/session.js";
import { UsageRecorder, type UsageStats } from "../runtime/usage.js";
import { checkNewAdapter } from "../runtime/adapter-name.js";
import { openWebSource, sourceName, type WebSource } from "./sources.js";

export interface EngineOpenOptions {
  model: WebSource;
  /** Name of the model in errors and stats (default: the File's name or the URL's last part). */
  name?: string;
  /** Threads; more than one needs a cross-origin isolated page (default: every core there, else 1). */
  threads?: number;
  contextSize?: number;
  adapterPrecision?: "f32" | "q8";
}

export interface WebAdapterInfo {
  name: string;
  /** The file's name (or URL). */
  file: string;
  scale: number;
  alpha: number | undefined;
  ranks: number[];
  targets: string[];
  bytes: number;
  /** The invocation tokens of an aLoRA adapter (it acts from their last occurrence on); undefined for a plain one. */
  aloraInvocationTokens: number[] | undefined;
  checkMs: number;
  loadMs: number;
}

export interface WebRuntimeStats extends UsageStats {
  backend: "wasm";
  device: string;
  model: string;
  threads: number;
  /** "workers": Web Workers over a shared memory; "single": one thread (the page is not cross-origin isolated, or 1 was asked). */
  threadsMode: "workers" | "single";
  /** Why threads are not used, when they are not. */
  threadsNote?: string;
  contextSize: number;
  load: { backendInitMs: number; modelLoadMs: number; totalMs: number };
  sessions: number;
  /** `wasm`: the engine's wasm memory; `rss`: that plus the JS heap where the browser reports it. */
  memory: { rss: number; wasm: number };
}

/** How many threads to use: what was asked, where shared memory is allowed; one thread otherwise. */
export function chooseWebThreads(asked: number | undefined): { threads: number; note?: string } {
  if (asked !== undefined && (!Number.isInteger(asked) || asked < 1)) throw new InvalidArgumentError("threads must be a whole number >= 1");
  if (asked === 1) return { threads: 1, note: "one thread was asked for" };
  if (!sharedMemoryAllowed()) {
    return { threads: 1, note: "the page is not cross-origin isolated (it needs the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)" };
  }
  return { threads: asked ?? Math.max(1, browser.navigator?.hardwareConcurrency ?? 1) };
}

export class WebEngine implements SessionHost {
  readonly liveSwap = true;
  readonly contextSize: number;
  private readonly entries = new Map<string, { info: WebAdapterInfo; handle: BackendAdapter }>();
  private readonly pending = new Set<string>();
  private readonly open = new Set<Session>();
  private readonly usage = new UsageRecorder();

  private constructor(
    readonly backend: WasmBackend,
    readonly base: GgufFile,
    readonly threadsNote: string | undefined,
    contextSize: number | undefined,
  ) {
    this.contextSize = contextSize ?? Math.min(2048, backend.trainContextSize || 2048);
  }

  static async open(o: EngineOpenOptions): Promise<WebEngine> {
    const { threads, note } = chooseWebThreads(o.threads);
    if (o.contextSize !== undefined && (!Number.isInteger(o.contextSize) || o.contextSize < 8)) throw new InvalidArgumentError("contextSize must be a whole number >= 8");
    const name = o.name ?? sourceName(o.model, "model.gguf");
    const source = await openWebSource(o.model, name);
    let base: GgufFile;
    try {
      base = parseGguf(source, name); // GgufError names file, field and offset
    } catch (e) {
      source.close();
      throw e;
    }
    try {
      const backend = await WasmBackend.open({ modelPath: name, gguf: base, threads, adapterPrecision: o.adapterPrecision });
      const why = backend.threads < threads ? "no shared-memory build of the wasm core runs here" : note;
      return new WebEngine(backend, base, why, o.contextSize);
    } catch (e) {
      base.close();
      throw e;
    }
  }

  /** Load an adapter under `name`: the same GGUF reader and adapter check as on Node; a failure changes nothing loaded. */
  async loadAdapter(name: string, input: WebSource, options: { scale?: number; fileName?: string } = {}): Promise<WebAdapterInfo> {
    const scale = checkNewAdapter(name, options.scale, (n) => this.entries.has(n) || this.pending.has(n));
    const file = options.fileName ?? sourceName(input, `${name}.gguf`);
    this.pending.add(name);
    try {
      const t0 = performance.now();
      const f = parseGguf(await openWebSource(input, file), file);
      let info: WebAdapterInfo;
      let handle: BackendAdapter;
      try {
        const check = checkAdapter(this.base, f);
        const refused = adapterCheckError(check, file, this.base.path);
        if (refused) throw refused;
        const invocation = adapterMeta(f).aloraInvocationTokens;
        const t1 = performance.now();
        try {
          handle = await this.backend.loadAdapter(file, f);
        } catch (e) {
          throw new AdapterLoadError(name, file, `the engine refused it: ${(e as Error).message ?? String(e)}`, { cause: e });
        }
        const s = check.summary;
        info = {
          name, file, scale, alpha: s.alpha, ranks: s.ranks, targets: s.targets, bytes: s.bytes,
          aloraInvocationTokens: invocation ? [...invocation] : undefined, checkMs: t1 - t0, loadMs: performance.now() - t1,
        };
      } finally {
        f.close();
      }
      this.entries.set(name, { info, handle });
      this.usage.recordAdapterLoad(name, info.checkMs + info.loadMs);
      return info;
    } finally {
      this.pending.delete(name);
    }
  }

  listAdapters(): WebAdapterInfo[] {
    return [...this.entries.values()].map((e) => e.info);
  }

  /** Removes `name` from every session's set (a running generation goes on without it), then frees it. */
  async unloadAdapter(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    this.entries.delete(name);
    await Promise.all([...this.open].map((s) => s.removeAdapter(name)));
    await this.backend.freeAdapter(e.handle);
  }

  session(options: SessionOptions = {}): Session {
    const s = new Session(this, options);
    this.open.add(s);
    return s;
  }

  async stats(): Promise<WebRuntimeStats> {
    const b = this.backend;
    const wasmBytes = b.model.core.memory.buffer.byteLength;
    return {
      backend: "wasm",
      device: b.device,
      model: b.modelPath,
      threads: b.threads,
      threadsMode: b.threads > 1 ? "workers" : "single",
      ...(this.threadsNote && b.threads === 1 ? { threadsNote: this.threadsNote } : {}),
      contextSize: this.contextSize,
      load: { backendInitMs: b.timings.initMs, modelLoadMs: b.timings.modelLoadMs, totalMs: b.timings.initMs + b.timings.modelLoadMs },
      ...this.usage.stats(),
      sessions: this.open.size,
      memory: { rss: (await b.memory()).rss, wasm: wasmBytes },
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.open].map((s) => s.dispose()));
    for (const name of [...this.entries.keys()]) await this.unloadAdapter(name);
    await this.backend.dispose();
    this.base.close();
  }

  /** @internal */
  resolveAdapter(name: string): BackendAdapter {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.handle;
  }
  /** @internal */
  defaultScale(name: string): number {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.info.scale;
  }
  /** @internal */
  invocation(name: string): readonly number[] | undefined {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.info.aloraInvocationTokens;
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
    this.open.delete(s);
  }
}
