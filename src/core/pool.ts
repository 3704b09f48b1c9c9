// Worker pool over one shared wasm memory: large products split by rows, calls handed over through Atomics slots.
import { LoraEdgeError } from "../errors.js";
import type { Core, KernelCall, ParallelRunner } from "./core.js";
import type { HostWorker, Platform } from "./platform.js";
import { compileBuilds, instantiate, newMemory } from "./loader.js";

/** Slot layout: Int32 [0] call seq, [1] done seq, [2] call count (-1 quits), [4] error; Float64 calls from byte 64. */
const SLOT_BYTES = 64 + 8 * 256;
/** A worker silent this long is taken for dead (no single kernel call runs anywhere near this). */
const WORKER_TIMEOUT_S = 120;

export interface PoolOptions {
  /** Threads including the calling one (default: the host's core count). */
  threads?: number;
  /** Largest size the shared memory may grow to, in bytes (default 4 GiB). */
  maxBytes?: number;
  /** Use the relaxed SIMD build when it passes its self-test (default true). */
  relaxed?: boolean;
  /** Products reading fewer weight bytes than this stay on one thread (default 512 KiB). */
  minParallelBytes?: number;
}

export class PoolError extends LoraEdgeError {
  constructor(message: string) {
    super("WORKER_POOL", message);
  }
}

export class KernelPool implements ParallelRunner {
  private disposed = false;
  private constructor(
    readonly core: Core,
    readonly threads: number,
    readonly minParallelBytes: number,
    private readonly workers: HostWorker[],
    private readonly slots: Int32Array[],
    private readonly names: string[],
  ) {}

  /** Starts threads-1 workers sharing one memory with `pool.core` (a core whose large products run in parallel). */
  static async create(platform: Platform, opts: PoolOptions = {}): Promise<KernelPool> {
    const builds = await compileBuilds(platform, opts.relaxed ?? true);
    const module = builds.threadsRelaxed ?? builds.threads;
    if (!module) throw new PoolError("no shared-memory build of the wasm core can run here");
    const threads = Math.max(1, Math.floor(opts.threads ?? platform.hardwareThreads()));
    const maxBytes = opts.maxBytes ?? 65536 * 65536;
    const memory = newMemory(true, Math.ceil(maxBytes / 65536));
    const core = instantiate(module, memory, builds.threadsRelaxed ? "threads-relaxed" : "threads", maxBytes);
    const names = Object.keys(core.instance.exports).filter((n) => typeof core.instance.exports[n] === "function");
    const workers: HostWorker[] = [];
    const slots: Int32Array[] = [];
    try {
      for (let i = 1; i < threads; i++) {
        const control = new SharedArrayBuffer(SLOT_BYTES);
        slots.push(new Int32Array(control));
        workers.push(platform.spawnWorker({ module, memory, control, names }));
      }
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      for (const w of workers) w.terminate();
      throw new PoolError(`kernel workers failed to start: ${(e as Error).message}`);
    }
    const pool = new KernelPool(core, threads, opts.minParallelBytes ?? 512 * 1024, workers, slots, names);
    core.parallel = pool;
    return pool;
  }

  /** Runs parts[0] here and parts[i] on worker i-1, returning when all are done. */
  run(parts: KernelCall[][]): void {
    if (this.disposed) throw new PoolError("pool is disposed");
    if (parts.length - 1 > this.workers.length) throw new PoolError(`${parts.length} parts for ${this.workers.length + 1} threads`);
    const seqs: number[] = [];
    for (let i = 1; i < parts.length; i++) {
      const slot = this.slots[i - 1];
      const f64 = new Float64Array(slot.buffer, 64);
      let o = 0;
      for (const c of parts[i]) {
        const idx = this.names.indexOf(c.fn);
        if (idx < 0) throw new PoolError(`no kernel ${c.fn}`);
        if (o + 2 + c.args.length > f64.length) throw new PoolError("too many calls for one slot");
        f64[o++] = idx;
        f64[o++] = c.args.length;
        for (const a of c.args) f64[o++] = a;
      }
      slot[2] = parts[i].length;
      slot[4] = 0;
      const seq = (Atomics.load(slot, 0) + 1) | 0;
      seqs.push(seq);
      Atomics.store(slot, 0, seq);
      Atomics.notify(slot, 0);
    }
    let error: unknown;
    try {
      for (const c of parts[0]) this.core.call(c.fn, ...c.args);
    } catch (e) {
      error = e;
    }
    for (let i = 1; i < parts.length; i++) {
      const slot = this.slots[i - 1];
      let waited = 0;
      for (;;) {
        const v = Atomics.load(slot, 1);
        if (v === seqs[i - 1]) break;
        if (Atomics.wait(slot, 1, v, 1000) === "timed-out" && ++waited >= WORKER_TIMEOUT_S) {
          throw new PoolError(`kernel worker ${i} did not finish within ${WORKER_TIMEOUT_S} s`);
        }
      }
      if (slot[4] !== 0 && !error) error = new PoolError(`kernel failed on worker ${i}`);
    }
    if (error) throw error;
  }

  /** Stops the workers; the core keeps working on one thread. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.core.parallel = undefined;
    for (const slot of this.slots) {
      slot[2] = -1;
      Atomics.store(slot, 0, (Atomics.load(slot, 0) + 1) | 0);
      Atomics.notify(slot, 0);
    }
    for (const w of this.workers) w.terminate();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
