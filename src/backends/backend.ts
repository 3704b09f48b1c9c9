// The interface every inference backend implements (native llama.cpp, the wasm engine), with optional capabilities such as batched decoding.
import type { GgufFile } from "../gguf/reader.js";

/** Which GPU API to use; false forces the CPU. */
export type GpuChoice = "auto" | false | "cuda" | "vulkan" | "metal";

export interface BackendOpenOptions {
  /** Base model GGUF path. */
  modelPath: string;
  gpu: GpuChoice;
  /** CPU threads for evaluation. */
  threads: number;
  /** Layers offloaded to the GPU (llama.cpp's n_gpu_layers); default: llama.cpp's own choice. CPU-only backends ignore it. */
  gpuLayers?: number;
  /**
   * How the wasm engine keeps adapter halves: "f32" (default) exact; "q8" int8 forms, a quarter of the bytes.
   * llama.cpp computes adapters as their files store them, so the native backend ignores it.
   */
  adapterPrecision?: "f32" | "q8";
  /** Loading progress, 0..1. */
  onProgress?: (progress: number) => void;
  /** The base already parsed by the caller, so a backend that reads tensors itself need not parse it again. */
  gguf?: GgufFile;
}

/** An adapter loaded into the backend (opaque to the runtime). */
export interface BackendAdapter {
  readonly path: string;
  /** True once freed; a freed adapter must never be attached again. */
  readonly freed: boolean;
}

/** One adapter of a context's active set with its user scale. */
export interface ActiveAdapter {
  adapter: BackendAdapter;
  scale: number;
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

/** One evaluation context (own KV cache) over the shared base model. */
export interface BackendContext {
  /** Tokens whose states are in the KV cache, in order. */
  readonly cachedTokens: readonly number[];
  /** Memory the context holds (KV cache and compute buffers, RAM and VRAM), bytes. */
  readonly memoryBytes: number;
  /** True when adapters can be replaced on this live context. */
  readonly liveSwap: boolean;
  /** Replace the active adapter set on the live context (only when `liveSwap`). Does not touch the KV cache. */
  setAdapters(active: readonly ActiveAdapter[]): Promise<void>;
  /** Forget every cached state. */
  clear(): Promise<void>;
  /** Keep only the first `n` cached tokens. */
  truncate(n: number): Promise<void>;
  /**
   * Evaluate `tokens` after the cached ones and sample next tokens one at a time.
   * Each yielded token is evaluated when the next one is requested; `return()` stops.
   */
  sample(tokens: readonly number[], sampling: SamplingOptions): AsyncGenerator<number, void, void>;
  /** Evaluate `tokens` after the cached ones and return the next-token log-probabilities (all of the vocabulary). */
  nextLogProbs(tokens: readonly number[]): Promise<Float64Array>;
  dispose(): Promise<void>;
}

/** One context's share of a batched decoding step (see `Backend.decodeBatch`). */
export interface DecodeStep {
  /** A context of this backend; each context at most once per call. */
  readonly context: BackendContext;
  /**
   * Tokens to evaluate after the context's cached ones, at least one: on a generation's first step its prompt
   * (or the part not cached yet), then each step the token the last step returned.
   */
  readonly tokens: readonly number[];
  /** How to pick the next token (temperature 0: greedy). */
  readonly sampling: SamplingOptions;
  /**
   * Restart seeded sampling's random stream from `sampling.seed` (set it on a generation's first step): the
   * tokens are then those `context.sample(tokens, sampling)` would yield. Otherwise the context's stream goes on.
   */
  readonly restart?: boolean;
}

export interface BackendMemory {
  /** Process resident memory, bytes. */
  rss: number;
  vramTotal?: number;
  vramUsed?: number;
}

export interface Backend {
  readonly name: "native" | "wasm";
  /** Device in words, e.g. "cpu" or "cuda". */
  readonly device: string;
  /** Whether contexts of this backend can swap adapters live. */
  readonly liveSwapSupported: boolean;
  /** Whether a loaded adapter's memory can be freed before the model is disposed. */
  readonly canFreeAdapters: boolean;
  readonly modelPath: string;
  readonly vocabSize: number;
  readonly trainContextSize: number;
  /** Milliseconds spent initialising the backend and loading the model. */
  readonly timings: { initMs: number; modelLoadMs: number };
  tokenize(text: string, addBos: boolean): number[];
  /** Text of `tokens`, given the tokens before them (for leading-space handling). */
  detokenize(tokens: readonly number[], before?: readonly number[]): string;
  isEndOfGeneration(token: number): boolean;
  /** Load an adapter; `gguf` is the same file already parsed (and checked) by the caller, when it has it. */
  loadAdapter(path: string, gguf?: GgufFile): Promise<BackendAdapter>;
  /** Free an adapter; the caller must have detached it from every context first. */
  freeAdapter(adapter: BackendAdapter): Promise<void>;
  /** A new context; `live: false` forces the re-create path for adapter changes. */
  createContext(options: { contextSize: number; adapters: readonly ActiveAdapter[]; live: boolean }): Promise<BackendContext>;
  /**
   * Optional capability, present where a backend can batch sequences whatever their adapter sets (the wasm
   * backend): one call advances several contexts by one step. Every step's tokens are evaluated in shared
   * forward passes (the base weights read once per pass for all rows, each adapter applied to the rows of the
   * contexts using it), and each step's next token is returned, in order. Each context ends exactly as if it
   * had evaluated its tokens alone: same cached states, same logits, same tokens. The returned tokens are not
   * evaluated yet (pass each as its context's next step). A step that cannot run (a context of another
   * backend or disposed, one given twice, no tokens, a full context) fails the call before anything runs.
   */
  decodeBatch?(steps: readonly DecodeStep[]): Promise<number[]>;
  memory(): Promise<BackendMemory>;
  dispose(): Promise<void>;
}
