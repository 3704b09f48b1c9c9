// Adapter registry: validates adapter files against the base, loads each once, detaches before freeing.
import fs from "node:fs";
import path from "node:path";
import type { Backend, BackendAdapter } from "../backends/backend.js";
import { AdapterLoadError, AdapterNameError } from "../errors.js";
import { adapterCheckError, checkAdapter, type AdapterSummary } from "../gguf/adapter.js";
import { adapterMeta } from "../gguf/metadata.js";
import { openGguf, parseGguf, type GgufFile } from "../gguf/reader.js";
import { bufferSource } from "../gguf/byte-source.js";
import { ggufBytes, type GgufWriteInput } from "../gguf/writer.js";
import { writeFileAtomic } from "../output-file.js";
import os from "node:os";
import type { Session } from "./session.js";
import { checkNewAdapter } from "./adapter-name.js";

export interface AdapterLoadOptions {
  /** Scale used when a session names this adapter without one (default 1). */
  scale?: number;
}

export interface AdapterInfo {
  name: string;
  /** Absolute path of the file. */
  path: string;
  /** Default user scale. */
  scale: number;
  /** adapter.lora.alpha, when present (effective scale = scale * alpha / rank). */
  alpha: number | undefined;
  ranks: number[];
  targets: string[];
  layers: number[];
  /** Bytes of adapter tensor data. */
  bytes: number;
  taskName: string | undefined;
  promptPrefix: string | undefined;
  /**
   * The invocation token sequence of an aLoRA adapter (adapter.alora.invocation_tokens): it acts only from the
   * last occurrence of these tokens in the prompt on. Undefined for a plain LoRA adapter.
   */
  aloraInvocationTokens: number[] | undefined;
  /** Time to check the file against the base, and for llama.cpp to load it. */
  checkMs: number;
  loadMs: number;
  /** Sessions whose set names it. */
  sessions: number;
}

interface Entry {
  info: Omit<AdapterInfo, "sessions">;
  handle: BackendAdapter;
}

/** What the registry needs from its runtime. */
export interface RegistryHost {
  readonly backend: Backend;
  readonly base: GgufFile;
  sessions(): Iterable<Session>;
  /**
   * Called after `name` is removed from the registry and before sessions are detached from it; `freed` is the
   * backend adapter about to be freed (null when another name still uses the same file).
   */
  beforeUnload(name: string, freed: BackendAdapter | null): Promise<void>;
  /** Throws DisposedError once the runtime is disposed. */
  ensureOpen(): void;
  recordAdapterLoad(name: string, ms: number): void;
}

export class AdapterRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Set<string>();
  /** Temp files of adapters added from memory on a backend that loads files only, by name. */
  private readonly tempFiles = new Map<string, string>();

  constructor(private readonly host: RegistryHost) {}

  /**
   * Load an adapter under `name`: our GGUF check against the base first (AdapterMismatchError naming
   * the first offending tensor and both shapes; AdapterDataError for a tensor holding NaN or Inf; GgufError
   * for a damaged file), then llama.cpp's loader (AdapterLoadError). `scale` must be finite and within
   * MAX_ADAPTER_SCALE. A failure changes nothing already loaded.
   */
  async load(name: string, file: string, options: AdapterLoadOptions = {}): Promise<AdapterInfo> {
    const scale = this.checkNew(name, options);
    const resolved = path.resolve(file);
    this.pending.add(name);
    try {
      const t0 = performance.now();
      let st: fs.Stats;
      try {
        st = fs.statSync(resolved);
      } catch (e) {
        throw new AdapterLoadError(name, resolved, (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message, { cause: e });
      }
      if (!st.isFile()) throw new AdapterLoadError(name, resolved, "not a regular file");
      const f = openGguf(resolved); // GgufError for anything malformed or truncated
      return this.register(name, resolved, f, scale, t0);
    } finally {
      this.pending.delete(name);
    }
  }

  /**
   * Applies an adapter made in this process (e.g. by `rt.train`) under `name`, checked against the base as `load`
   * checks files. The wasm backend reads it from memory (no file is written); the native backend (llama.cpp loads
   * adapters from files only) gets it as a temp GGUF, removed when the adapter is unloaded.
   */
  async add(name: string, adapter: { gguf(): GgufWriteInput }, options: AdapterLoadOptions = {}): Promise<AdapterInfo> {
    const scale = this.checkNew(name, options);
    this.pending.add(name);
    try {
      const t0 = performance.now();
      const bytes = ggufBytes(adapter.gguf());
      if (this.host.backend.name === "wasm") return this.register(name, `memory:${name}`, parseGguf(bufferSource(bytes), `memory:${name}`), scale, t0);
      const tmp = path.join(os.tmpdir(), `lora-edge-${process.pid}-${name}-${Date.now()}.gguf`);
      writeFileAtomic(tmp, bytes);
      try {
        const info = await this.register(name, tmp, openGguf(tmp), scale, t0);
        this.tempFiles.set(name, tmp);
        return info;
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw e;
      }
    } finally {
      this.pending.delete(name);
    }
  }

  /** Checks a new adapter's name and scale; returns the scale. */
  private checkNew(name: string, options: AdapterLoadOptions): number {
    this.host.ensureOpen();
    return checkNewAdapter(name, options.scale, (n) => this.entries.has(n) || this.pending.has(n));
  }

  /** Checks an opened adapter against the base, has the backend load it, and registers it (closes `f`). */
  private async register(name: string, resolved: string, f: GgufFile, scale: number, t0: number): Promise<AdapterInfo> {
    {
      let summary: AdapterSummary;
      let meta: ReturnType<typeof adapterMeta>;
      let handle: BackendAdapter;
      let t1: number;
      try {
        const check = checkAdapter(this.host.base, f);
        const refused = adapterCheckError(check, resolved, this.host.base.path);
        if (refused) throw refused;
        summary = check.summary;
        meta = adapterMeta(f);
        t1 = performance.now();
        const shared = [...this.entries.values()].find((e) => e.info.path === resolved);
        if (shared) handle = shared.handle;
        else {
          try {
            handle = await this.host.backend.loadAdapter(resolved, f);
          } catch (e) {
            throw new AdapterLoadError(name, resolved, `the backend refused it: ${(e as Error).message ?? String(e)}`, { cause: e });
          }
        }
      } finally {
        f.close();
      }
      const t2 = performance.now();
      const info = {
        name,
        path: resolved,
        scale,
        alpha: summary.alpha,
        ranks: summary.ranks,
        targets: summary.targets,
        layers: summary.layers,
        bytes: summary.bytes,
        taskName: meta.taskName,
        promptPrefix: meta.promptPrefix,
        aloraInvocationTokens: meta.aloraInvocationTokens ? [...meta.aloraInvocationTokens] : undefined,
        checkMs: t1 - t0,
        loadMs: t2 - t1,
      };
      this.entries.set(name, { info, handle });
      this.host.recordAdapterLoad(name, t2 - t0);
      return this.withSessions(info);
    }
  }

  private withSessions(info: Omit<AdapterInfo, "sessions">): AdapterInfo {
    let n = 0;
    for (const s of this.host.sessions()) if (s.uses(info.name)) n++;
    return { ...info, sessions: n };
  }

  list(): AdapterInfo[] {
    return [...this.entries.values()].map((e) => this.withSessions(e.info));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): AdapterInfo | undefined {
    const e = this.entries.get(name);
    return e && this.withSessions(e.info);
  }

  /** @internal the backend handle of a loaded adapter. */
  handle(name: string): BackendAdapter {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.handle;
  }

  /** @internal the invocation sequence of a loaded aLoRA adapter (undefined for a plain one). */
  invocation(name: string): readonly number[] | undefined {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.info.aloraInvocationTokens;
  }

  /** @internal */
  defaultScale(name: string): number {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    return e.info.scale;
  }

  /**
   * Unload `name`: it is removed from every session's set first (a running generation continues with the
   * rest of its set after its current token), then freed unless another name shares the same file.
   */
  async unload(name: string): Promise<void> {
    this.host.ensureOpen();
    return this.remove(name);
  }

  private async remove(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) throw new AdapterNameError(name, `no adapter named "${name}" is loaded`);
    this.entries.delete(name);
    // Every set drops the name now (synchronously), so no later adapter change can attach it again.
    const detached = [...this.host.sessions()].map((s) => s.removeAdapter(name));
    const shared = [...this.entries.values()].some((o) => o.handle === e.handle);
    await this.host.beforeUnload(name, shared ? null : e.handle);
    await Promise.all(detached);
    if (!shared) await this.host.backend.freeAdapter(e.handle);
    const tmp = this.tempFiles.get(name);
    if (tmp) {
      this.tempFiles.delete(name);
      fs.rmSync(tmp, { force: true });
    }
  }

  /** @internal unload everything (runtime disposal). */
  async clear(): Promise<void> {
    for (const name of [...this.entries.keys()]) await this.remove(name);
  }
}
