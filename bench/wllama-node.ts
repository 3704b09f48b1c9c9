// wllama (llama.cpp compiled to wasm) run in Node for the engine benchmark: its compat build in a worker thread behind a Web Worker stand-in; prefill and decode tokens/s from its server's own timings.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { resolveObjectURL } from "node:buffer";
import { pathToFileURL } from "node:url";
import { Worker as NodeWorker } from "node:worker_threads";

const require = createRequire(import.meta.url);

/** What a wllama run measured: tokens/s from llama.cpp's own prompt and generation timings. */
export interface WllamaFigures {
  prefillTps: number;
  decodeTps: number;
  /** Prompt tokens as its tokenizer made them (its completion takes text, not token ids). */
  promptTokens: number;
}

/**
 * Why wllama's default build cannot run here, or undefined when it can: it needs wasm memory64 (and 64-bit
 * tables) and JSPI, which Node 20 lacks; wllama then asks for its compat build (32-bit memory, Asyncify).
 */
export async function defaultBuildProblem(): Promise<string | undefined> {
  const wasm = path.join(path.dirname(require.resolve("@wllama/wllama/package.json")), "esm", "wasm", "wllama.wasm");
  try {
    await (globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<unknown> } }).WebAssembly.compile(fs.readFileSync(wasm));
    return undefined;
  } catch (e) {
    return `@wllama/wllama's default build does not compile on Node ${process.versions.node}: ${(e as Error).message}`;
  }
}

/** Code run in the worker thread before wllama's worker code: the few Web Worker globals it uses. */
const WORKER_PRELUDE = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
// no WebGPU here: ggml's WebGPU backend finds no adapter and the CPU backend runs
if (!globalThis.navigator) globalThis.navigator = { userAgent: "Node.js", hardwareConcurrency: 1, gpu: { requestAdapter: async () => null } };
globalThis.postMessage = (data, transfer) => parentPort.postMessage(data, transfer);
let onmessageHandler = null;
Object.defineProperty(globalThis, "onmessage", { get: () => onmessageHandler, set: (f) => { onmessageHandler = f; }, configurable: true });
parentPort.on("message", (data) => { if (onmessageHandler) onmessageHandler({ data }); });
`;

/** A Web Worker made from a blob: URL, over a Node worker thread (messages are queued until its code is read). */
class BlobWorker {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  private worker?: NodeWorker;
  private queue: [unknown, ArrayBuffer[] | undefined][] = [];
  private terminated = false;

  constructor(url: string | URL) {
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`wllama worker: unknown object URL ${String(url)}`);
    void blob.text().then((code) => {
      if (this.terminated) return;
      const w = new NodeWorker(WORKER_PRELUDE + code, { eval: true });
      w.on("message", (data) => this.onmessage?.({ data }));
      w.on("error", (e) => this.onerror?.(e));
      this.worker = w;
      for (const [d, t] of this.queue) w.postMessage(d, t as never);
      this.queue = [];
    });
  }

  postMessage(data: unknown, transfer?: ArrayBuffer[]): void {
    if (this.worker) this.worker.postMessage(data, transfer as never);
    else this.queue.push([data, transfer]);
  }

  terminate(): void {
    this.terminated = true;
    void this.worker?.terminate();
  }
}

/** Browser globals wllama's main side reads, set only where Node has none. */
function installGlobals(threads: number): void {
  const g = globalThis as Record<string, unknown>;
  if (!g.navigator) g.navigator = { hardwareConcurrency: threads * 2, userAgent: `Node.js/${process.versions.node}` };
  if (!g.self) g.self = globalThis;
  if (!(g.self as Record<string, unknown>).location) (g.self as Record<string, unknown>).location = { href: pathToFileURL(process.cwd() + "/").href };
  g.Worker = BlobWorker;
}

/**
 * Loads `modelPath` in wllama (compat build, `threads` threads) and evaluates the text `prompt` then
 * greedy-decodes `decode` tokens, `runs` times after a warm-up; returns the median figures over the runs.
 */
export async function wllamaRun(modelPath: string, threads: number, prompt: string, decode: number, runs: number): Promise<WllamaFigures> {
  installGlobals(threads);
  const { Wllama } = (await import("@wllama/wllama")) as typeof import("@wllama/wllama");
  const compatDir = path.join(path.dirname(require.resolve("@wllama/wllama-compat/package.json")), "wasm");
  const quiet = { debug() {}, log() {}, info() {}, warn() {}, error: (...a: unknown[]) => process.stderr.write(`wllama: ${a.map(String).join(" ")}\n`) };
  const wllama = new Wllama({ default: path.join(compatDir, "wllama.wasm") }, {
    suppressNativeLog: !process.env.WLLAMA_LOG, logger: (process.env.WLLAMA_LOG ? console : quiet) as never,
    // the model comes as a Blob: no download cache (which needs a browser storage backend)
    cacheManager: {} as never, modelManager: {} as never,
  });
  wllama.setCompat({ worker: { code: fs.readFileSync(path.join(compatDir, "wllama.js"), "utf8") }, wasm: path.join(compatDir, "wllama.wasm") });
  const blob = await fs.openAsBlob(modelPath);
  await wllama.loadModel([blob], { n_threads: threads, n_ctx: Math.max(256, prompt.length + decode + 8), n_batch: 512, n_gpu_layers: 0, n_parallel: 1 });
  try {
    const pre: number[] = [], dec: number[] = [];
    let promptTokens = 0;
    for (let r = 0; r < runs + 1; r++) {
      const res = (await wllama.createCompletion({
        prompt, n_predict: decode, temperature: 0, ignore_eos: true, cache_prompt: false, stream: false,
      } as never)) as unknown as { timings?: { prompt_n: number; prompt_per_second: number; predicted_per_second: number } };
      if (!res.timings) throw new Error("wllama: the completion carries no timings");
      if (r === 0) continue; // warm-up
      pre.push(res.timings.prompt_per_second);
      promptTokens = res.timings.prompt_n;
      dec.push(res.timings.predicted_per_second);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return { prefillTps: median(pre), decodeTps: median(dec), promptTokens };
  } finally {
    await wllama.exit();
  }
}
