// Wasm backend: the project's own CPU engine (AssemblyScript SIMD core) behind the Backend interface; host work goes through wasm/host-node.ts.
import { openGguf, type GgufFile } from "../gguf/reader.js";
import type { Core } from "../core/core.js";
import { KernelPool } from "../core/pool.js";
import { loadCoreOn } from "../core/loader.js";
import { wasmHost as host } from "./wasm/host-node.js";
import { EngineAdapter, EngineContext, EngineModel, type WeightOptions } from "./wasm/engine/index.js";
import { createTokenizer, vocabFromMetadata, type Tokenizer } from "./wasm/tokenizer/index.js";
import { Rng } from "../random.js";
import { sampleToken, type SamplingParams } from "./wasm/engine/sampling.js";
import type {
  ActiveAdapter,
  Backend,
  BackendAdapter,
  BackendBatchContext,
  BackendContext,
  BackendMemory,
  BackendOpenOptions,
  DecodeStep,
  BackendSequence,
  SamplingOptions,
} from "./backend.js";

export interface WasmOpenOptions extends Omit<BackendOpenOptions, "gpu"> {
  gpu?: BackendOpenOptions["gpu"];
  /** llama.cpp's CPU default (flash attention with an f16 running sum) when true (default), plain softmax otherwise. */
  flashAttention?: boolean;
  /** Q4_0 weights repacked at load into groups of four rows for the faster kernel (default true; same results). */
  repackQ4_0?: boolean;
}

/** A wasm core for `threads` threads: a worker pool sharing one memory when more than one. */
export async function openCore(threads: number): Promise<{ core: Core; pool?: KernelPool }> {
  if (threads > 1) {
    try {
      const pool = await KernelPool.create(host.platform(), { threads });
      return { core: pool.core, pool };
    } catch {
      // no shared-memory build here: one thread
    }
  }
  return { core: await loadCoreOn(host.platform()) };
}

/** Loads a model file into a core (the file is read here, the engine only sees tensors). */
export function loadEngineModel(core: Core, modelPath: string, onProgress?: (p: number) => void, opts: WeightOptions = {}): EngineModel {
  const f = openGguf(modelPath);
  try {
    return new EngineModel(core, f, onProgress, opts);
  } finally {
    f.close();
  }
}

class WasmAdapter implements BackendAdapter {
  constructor(readonly path: string, readonly engine: EngineAdapter) {}
  get freed(): boolean {
    return this.engine.freed;
  }
}

function engineSet(active: readonly ActiveAdapter[]): { adapter: EngineAdapter; scale: number }[] {
  // entries sharing one adapter add their scales, as the native backend does
  const by = new Map<EngineAdapter, number>();
  for (const a of active) {
    const e = (a.adapter as WasmAdapter).engine;
    if (!e) throw new Error(`adapter ${a.adapter.path} was not loaded by the wasm backend`);
    if (e.freed) throw new Error(`adapter ${a.adapter.path} was freed`);
    by.set(e, (by.get(e) ?? 0) + a.scale);
  }
  return [...by].map(([adapter, scale]) => ({ adapter, scale }));
}

class WasmContext implements BackendContext {
  readonly liveSwap = true;
  /** The random stream of batched steps' seeded sampling (see DecodeStep.restart). */
  rng: Rng | undefined;
  constructor(readonly backend: WasmBackend, readonly engine: EngineContext) {}

  get cachedTokens(): readonly number[] {
    return this.engine.cachedTokens;
  }

  get memoryBytes(): number {
    return this.engine.memoryBytes;
  }

  get evaluatedTokens(): number {
    return this.engine.evaluatedTokens;
  }

  async setAdapters(active: readonly ActiveAdapter[]): Promise<void> {
    this.engine.setAdapters(engineSet(active));
  }

  async clear(): Promise<void> {
    this.engine.clear();
  }

  async truncate(n: number): Promise<void> {
    this.engine.truncate(n);
  }

  async evaluate(tokens: readonly number[]): Promise<void> {
    this.engine.evaluate(tokens);
  }

  async *sample(tokens: readonly number[], s: SamplingOptions): AsyncGenerator<number, void, void> {
    const it = this.engine.generate(tokens, { temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed });
    try {
      for (;;) {
        const r = it.next();
        if (r.done) return;
        yield r.value;
        // the engine computes synchronously: let the event loop (a consumer that stops, I/O) in between tokens
        await host.yieldToEventLoop();
      }
    } finally {
      it.return();
    }
  }

  async nextLogProbs(tokens: readonly number[]): Promise<Float64Array> {
    const logits = this.engine.evaluate(tokens);
    let mx = -Infinity;
    for (const v of logits) mx = Math.max(mx, v);
    let z = 0;
    for (const v of logits) z += Math.exp(v - mx);
    const lse = mx + Math.log(z);
    return Float64Array.from(logits, (v) => v - lse);
  }

  async dispose(): Promise<void> {
    this.backend.contexts.delete(this);
    this.engine.dispose();
  }
}

/**
 * Sequences for the scheduler, each an engine context of its own (own KV cache and adapter set). The scheduler
 * advances them together with `decodeBatch` (one shared forward pass for every set); each also steps alone.
 */
class WasmBatchContext implements BackendBatchContext {
  readonly adapterScope = "sequence" as const;
  readonly mixedBatch = true;
  private readonly open = new Set<WasmSequence>();
  constructor(
    private readonly backend: WasmBackend,
    readonly slots: number,
    readonly contextSize: number,
  ) {}

  get memoryBytes(): number {
    let n = 0;
    for (const s of this.open) n += s.engine.memoryBytes;
    return n;
  }

  async setAdapters(): Promise<void> {
    throw new Error("wasm sequences carry their own adapter sets");
  }

  sequence(): BackendSequence {
    if (this.open.size >= this.slots) throw new Error(`all ${this.slots} sequences are in use`);
    const context = new WasmContext(this.backend, new EngineContext(this.backend.model, this.contextSize));
    this.backend.contexts.add(context);
    const s: WasmSequence = new WasmSequence(context, () => this.open.delete(s));
    this.open.add(s);
    return s;
  }

  async dispose(): Promise<void> {
    for (const s of [...this.open]) await s.release();
  }
}

class WasmSequence implements BackendSequence {
  private it: Generator<number, void, void> | null = null;
  constructor(
    readonly context: WasmContext,
    private readonly onRelease: () => void,
  ) {}

  get engine(): EngineContext {
    return this.context.engine;
  }

  get cachedTokens(): readonly number[] {
    return this.engine.cachedTokens;
  }

  setAdapters(active: readonly ActiveAdapter[]): void {
    this.engine.setAdapters(engineSet(active));
  }

  async clear(): Promise<void> {
    this.engine.clear();
  }

  async truncate(n: number): Promise<void> {
    this.engine.truncate(n);
  }

  async evaluate(tokens: readonly number[]): Promise<void> {
    if (this.it) throw new Error("a generation is running on this sequence");
    this.engine.evaluate(tokens);
  }

  begin(tokens: readonly number[], s: SamplingOptions): void {
    if (this.it) throw new Error("a generation is already running on this sequence");
    this.it = this.engine.generate(tokens, { temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed });
  }

  async advance(): Promise<number> {
    if (!this.it) throw new Error("no generation on this sequence");
    const r = this.it.next();
    if (r.done) throw new Error("the sequence ended its generation");
    return r.value;
  }

  async end(): Promise<void> {
    this.it?.return();
    this.it = null;
  }

  async release(): Promise<void> {
    await this.end();
    this.onRelease();
    await this.context.dispose();
  }
}

export class WasmBackend implements Backend {
  readonly name = "wasm" as const;
  readonly liveSwapSupported = true;
  readonly canFreeAdapters = true;
  readonly contexts = new Set<{ readonly engine: EngineContext; dispose(): Promise<void> }>();
  /** Bytes of the tokens detokenized so far, by id (see pieceBytes). */
  private readonly pieces = new Map<number, Uint8Array>();
  private readonly textDecoder = new TextDecoder();

  private constructor(
    readonly model: EngineModel,
    readonly tokenizer: Tokenizer,
    readonly modelPath: string,
    readonly threads: number,
    readonly timings: { initMs: number; modelLoadMs: number },
    private readonly pool: KernelPool | undefined,
  ) {}

  static async open(o: WasmOpenOptions): Promise<WasmBackend> {
    const t0 = performance.now();
    const threads = Math.max(1, Math.floor(o.threads));
    const { core, pool } = await openCore(threads);
    const t1 = performance.now();
    const modelPath = host.resolvePath(o.modelPath);
    const f = o.gguf ?? openGguf(modelPath);
    try {
      const model = new EngineModel(core, f, o.onProgress, { repackQ4_0: o.repackQ4_0 });
      if (o.flashAttention === false) model.flashAttention = false;
      if (o.adapterPrecision) model.adapterPrecision = o.adapterPrecision;
      const tokenizer = createTokenizer(vocabFromMetadata(f, modelPath));
      return new WasmBackend(model, tokenizer, modelPath, pool ? pool.threads : 1, { initMs: t1 - t0, modelLoadMs: performance.now() - t1 }, pool);
    } catch (e) {
      pool?.dispose();
      throw e;
    } finally {
      if (f !== o.gguf) f.close();
    }
  }

  get device(): string {
    return `cpu (wasm ${this.model.core.build}, ${this.threads} thread${this.threads > 1 ? "s" : ""})`;
  }
  get vocabSize(): number {
    return this.model.config.nVocab;
  }
  get trainContextSize(): number {
    return this.model.config.contextLength;
  }

  tokenize(text: string, addBos: boolean, special = false): number[] {
    const ids = this.tokenizer.tokenize(text, { parseSpecial: special });
    const bos = this.tokenizer.vocab.bosId;
    return addBos && this.tokenizer.vocab.addBos && bos !== null ? [bos, ...ids] : ids;
  }

  detokenize(tokens: readonly number[], before: readonly number[] = []): string {
    if (before.length === 0) return this.tokenizer.detokenize(tokens);
    if (!this.tokenizer.vocab.cleanSpaces) {
      // after earlier tokens no piece loses its leading space, and without the whole-text space clean-up the
      // bytes of `tokens` are their pieces' own: the same text as below, without re-reading `before`
      return this.textDecoder.decode(this.pieceBytes(tokens));
    }
    const all = this.tokenizer.detokenizeBytes([...before, ...tokens]);
    const head = this.tokenizer.detokenizeBytes(before);
    return this.textDecoder.decode(all.subarray(head.length));
  }

  /** The tokens' pieces joined (each token's bytes read once, then kept: streaming detokenizes every step). */
  private pieceBytes(tokens: readonly number[]): Uint8Array {
    let n = 0;
    const parts = tokens.map((id) => {
      let p = this.pieces.get(id);
      if (!p) this.pieces.set(id, (p = this.tokenizer.tokenPieceBytes(id)));
      n += p.length;
      return p;
    });
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  isEndOfGeneration(token: number): boolean {
    return this.tokenizer.vocab.eogIds.has(token) || token === this.tokenizer.vocab.eosId;
  }

  async loadAdapter(file: string, gguf?: GgufFile): Promise<BackendAdapter> {
    const resolved = host.resolvePath(file);
    const f = gguf ?? openGguf(resolved);
    try {
      return new WasmAdapter(resolved, this.model.loadAdapter(f));
    } finally {
      if (f !== gguf) f.close();
    }
  }

  async freeAdapter(adapter: BackendAdapter): Promise<void> {
    const a = adapter as WasmAdapter;
    for (const c of this.contexts) {
      if (c.engine.uses(a.engine)) throw new Error(`adapter ${a.path} is still attached to a context`);
    }
    a.engine.free();
  }

  async createContext(o: { contextSize: number; adapters: readonly ActiveAdapter[]; live: boolean }): Promise<BackendContext> {
    const c = new WasmContext(this, new EngineContext(this.model, o.contextSize, engineSet(o.adapters)));
    this.contexts.add(c);
    return c;
  }

  /** Several contexts advanced by one step in shared forward passes (see Backend.decodeBatch). */
  async decodeBatch(steps: readonly DecodeStep[]): Promise<number[]> {
    const ctxs = steps.map((s) => {
      const c = s.context as WasmContext;
      if (!(c instanceof WasmContext) || c.backend !== this || !this.contexts.has(c)) throw new Error("decodeBatch: a context not open on this backend");
      return c;
    });
    const out = new Array<number>(steps.length);
    EngineContext.evaluateTogether(steps.map((s, i) => ({ context: ctxs[i].engine, tokens: s.tokens })), (i, row) => {
      const s = steps[i], c = ctxs[i];
      const p: SamplingParams = { temperature: s.sampling.temperature, topK: s.sampling.topK, topP: s.sampling.topP, seed: s.sampling.seed };
      if (s.restart || !c.rng) c.rng = new Rng(p.seed);
      out[i] = p.temperature > 0 ? sampleToken(this.model.logits(row), p, c.rng) : this.model.argmax(row);
    });
    return out;
  }

  async createBatchContext(o: { slots: number; contextSize: number }): Promise<BackendBatchContext> {
    return new WasmBatchContext(this, o.slots, o.contextSize);
  }

  async memory(): Promise<BackendMemory> {
    return { rss: host.residentBytes(this.model.core.memory.buffer.byteLength) };
  }

  async dispose(): Promise<void> {
    for (const c of [...this.contexts]) await c.dispose();
    this.pool?.dispose();
  }
}
