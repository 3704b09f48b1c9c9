// What the wasm backend needs from its host besides the engine: the core's platform, paths, memory, yielding.
import type { Platform } from "../../core/platform.js";

export interface WasmHost {
  /** The platform the wasm core is loaded on (wasm bytes, cores, workers). */
  platform(): Platform;
  /** The name a model or adapter is known by (an absolute path on Node; as given in a browser). */
  resolvePath(p: string): string;
  /** Resident memory in bytes, given the bytes of the engine's wasm memory. */
  residentBytes(wasmBytes: number): number;
  /** Resolves after other queued work (I/O, messages) had its turn: called between generated tokens. */
  yieldToEventLoop(): Promise<void>;
}
