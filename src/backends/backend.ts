// The interface every inference backend implements (native llama.cpp, the wasm engine), with optional capabilities such as batched decoding.
import type { GgufFile } from "../gguf/reader.js";

/** Which GPU API to use; false forces the CPU. */
export type GpuChoice = "auto" | false | "cuda" | "vulkan" | "metal";

export interface BackendOpenOptions {
  /** Base model GGUF path. */
  modelPath: string;
  gpu: GpuChoice;
  /** CPU threads for evaluation (with `measureThreads`, the most to use). */
  threads: number;
  /**
   * Pick the thread count, up to `threads`, by timing decode steps on the loaded model (native CPU models);
   * backends and devices that do not measure use `threads`.
   */
  measureThreads?: boolean;
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
  /** Tokens this context has evaluated since it was created (prompt and generated ones), as the backend counts them. */
  readonly evaluatedTokens: number;
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
  /** Evaluate `tokens` (at least one) after the cached ones with the attached adapters, sampling nothing. */
  evaluate(tokens: readonly number[]): Promise<void>;
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

/** Where a backend's model runs on a GPU: the API, its devices, the layers offloaded and the bytes on the device. */
export interface GpuReport {
  api: "cuda" | "vulkan" | "metal";
  devices: string[];
  /** The device is a CPU-type one (a software renderer such as lavapipe), in use because it was asked for. */
  software: boolean;
  /** Layers on the GPU (llama.cpp's n_gpu_layers; the output layer counts as one) of the model's total (n_layer + 1). */
  layers: number;
  totalLayers: number;
  /** Bytes llama.cpp allocated on the device for the model's weights, and for the contexts (KV cache, compute buffers). */
  modelBytes: number;
  contextBytes: number;
  /** The same for host memory (weights left on the CPU, host staging buffers). */
  hostModelBytes: number;
  hostContextBytes: number;
  /** Device memory as the driver reports it (software devices report a fixed heap and nothing used). */
  vram: { total: number; used: number; free: number };
}

export interface BackendMemory {
  /** Process resident memory, bytes. */
  rss: number;
  vramTotal?: number;
  vramUsed?: number;
  /** Set when the model runs on a GPU. */
  gpu?: GpuReport;
}

export interface Backend {
  readonly name: "native" | "wasm";
  /** Device in words, e.g. "cpu" or "cuda". */
  readonly device: string;
  /** Whether contexts of this backend can swap adapters live. */
  readonly liveSwapSupported: boolean;
  /** Why live swapping is off, when it is. */
  readonly liveSwapNote?: string;
  /** Set when the GPU asked for is not the one used (e.g. "auto" found no usable GPU): says why. */
  readonly deviceNote?: string;
  /** Whether a loaded adapter's memory can be freed before the model is disposed. */
  readonly canFreeAdapters: boolean;
  readonly modelPath: string;
  /** CPU threads evaluation uses. */
  readonly threads: number;
  readonly vocabSize: number;
  readonly trainContextSize: number;
  /** Milliseconds spent initialising the backend and loading the model. */
  readonly timings: { initMs: number; modelLoadMs: number };
  /** Text to token ids; `special` reads control tokens written in the text (e.g. "<s>" from a chat template). */
  tokenize(text: string, addBos: boolean, special?: boolean): number[];
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
  /** A context hosting several sequences that a scheduler advances together (see BackendBatchContext). */
  createBatchContext(options: { slots: number; contextSize: number }): Promise<BackendBatchContext>;
  memory(): Promise<BackendMemory>;
  dispose(): Promise<void>;
}

/**
 * Several sequences over one base, advanced together. The runtime's scheduler calls `advance()` on every
 * sequence of one step in the same tick and awaits them all; the backend evaluates what it can of them in
 * one batch. With `adapterScope: "context"` one adapter set applies to the whole context (the scheduler only
 * steps sequences of that set together and calls `setAdapters` between steps); with "sequence" each sequence
 * carries its own set, and a backend that evaluates several sets in one pass (`mixedBatch`) can serve every
 * set in one step.
 */
export interface BackendBatchContext {
  readonly slots: number;
  /** Tokens each sequence can hold. */
  readonly contextSize: number;
  /** Memory the context holds (KV caches and compute buffers), bytes. */
  readonly memoryBytes: number;
  readonly adapterScope: "context" | "sequence";
  /** True when one step evaluates sequences of different adapter sets in one pass. */
  readonly mixedBatch: boolean;
  /** The whole context's adapter set (scope "context"); does not touch cached states. */
  setAdapters(active: readonly ActiveAdapter[]): Promise<void>;
  /** A free sequence slot (at most `slots` at once). */
  sequence(): BackendSequence;
  dispose(): Promise<void>;
}

/** One sequence of a batch context: its own cached tokens, generated one step at a time. */
export interface BackendSequence {
  /** Tokens whose states are cached, in order. */
  readonly cachedTokens: readonly number[];
  /** This sequence's adapter set (scope "sequence" only). */
  setAdapters(active: readonly ActiveAdapter[]): void;
  clear(): Promise<void>;
  /** Keep only the first `n` cached tokens. */
  truncate(n: number): Promise<void>;
  /**
   * Evaluate `tokens` (at least one) after the cached ones now, sampling nothing, with the adapters in effect
   * (scope "context": the context's set, which the caller keeps for the call); only between generations.
   */
  evaluate(tokens: readonly number[]): Promise<void>;
  /** Start a generation: `tokens` (after the cached ones) are evaluated by the next `advance()`. */
  begin(tokens: readonly number[], sampling: SamplingOptions): void;
  /** Evaluate the pending tokens and sample the next one (the next call evaluates that token first). */
  advance(): Promise<number>;
  /** End the generation; the last sampled token stays unevaluated. */
  end(): Promise<void>;
  /** Park the cached states in a file and restore them (where the backend can); bytes written. */
  saveState?(file: string): Promise<number>;
  loadState?(file: string): Promise<void>;
  /** Free the slot. */
  release(): Promise<void>;
}
