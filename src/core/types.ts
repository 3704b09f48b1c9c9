// Shapes shared by the core's modules: resident matrices, kernel calls, the thread runner and what products need from a core.
import { LoraEdgeError } from "../errors.js";
import type { GgmlTypeTraits } from "../gguf/ggml-types.js";
import type { Arena } from "./arena.js";

/** Which compiled build an instance runs. */
export type BuildName = "simd" | "relaxed" | "threads" | "threads-relaxed";

/** A weight matrix resident in wasm memory: rows of `cols` values of one ggml type. */
export interface Matrix {
  readonly ptr: number;
  readonly type: GgmlTypeTraits;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
  /** A repacked layout named in the type's table row (e.g. "q4_0x4"); absent: rows one after another. */
  readonly layout?: string;
}

/** One kernel invocation: export name and numeric arguments. */
export interface KernelCall {
  fn: string;
  args: number[];
}

/** Runs lists of calls on several threads at once: parts[0] on the calling thread. */
export interface ParallelRunner {
  readonly threads: number;
  /** Work (bytes of weights) below which a product stays on one thread. */
  readonly minParallelBytes: number;
  /** True when the threads poll between rounds: a round then costs microseconds, not a wake-up, and small work pays to split. */
  readonly polls: boolean;
  /**
   * Runs parts[i] on thread i and returns when all are done. Calls of one part keep their order; parts must
   * not depend on each other. A part longer than a thread's call slot runs in several rounds.
   */
  run(parts: KernelCall[][]): void;
  /**
   * Runs independent calls, each thread taking the next one not yet taken until none is left (a thread slowed
   * by other work takes fewer), and returns when all are done. Calls must not depend on each other.
   */
  runShared?(calls: readonly KernelCall[]): void;
}

/** A wasm export as the host calls it. */
export type KernelFn = (...args: number[]) => number | void;

/** What products need from a core: its memory, its kernels by name and its threads. */
export interface KernelHost {
  readonly arena: Arena;
  fn(name: string): KernelFn;
  readonly parallel: ParallelRunner | undefined;
}

export class CoreError extends LoraEdgeError {
  constructor(message: string) {
    super("CORE", message);
  }
}
