// What the core needs from its host (wasm bytes, core count, engine flags, workers): browser-neutral interface.
import type { WasmMemory, WasmModule } from "./wasm-api.js";

/** A worker running the core's worker source, as the host provides it. */
export interface HostWorker {
  /** Resolves once the worker reported it is ready (or rejects with its error). */
  readonly ready: Promise<void>;
  /** Stops the worker; safe to call twice. */
  terminate(): void;
}

export interface Platform {
  /** Bytes of a compiled wasm build by file name, e.g. "core-simd.wasm". */
  loadWasm(name: string): Promise<Uint8Array>;
  /** Logical cores usable for compute. */
  hardwareThreads(): number;
  /**
   * Prepares the engine to run the relaxed SIMD build whose bytes are given (engine flags, set before
   * anything is compiled); false when the host cannot.
   */
  enableRelaxedSimd(relaxedBuild: Uint8Array): boolean;
  /** Starts a worker that instantiates `module` over the shared `memory` and serves calls through `control`. */
  spawnWorker(data: WorkerInit): HostWorker;
}

/** What a kernel worker is started with. */
export interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  /** SharedArrayBuffer of the call slot (see pool.ts for its layout). */
  control: SharedArrayBuffer;
  /** Export names, indexed by the function number written into the call slot. */
  names: string[];
  /** Polls of the call slot before the worker sleeps between rounds (see PoolOptions.spinPolls). */
  spinPolls: number;
}
