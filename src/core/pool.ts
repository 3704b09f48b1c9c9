// Worker pool over one shared wasm memory: large products split by rows, calls handed over through Atomics slots.
import { LoraEdgeError } from "../errors.js";
import type { Core } from "./core.js";
import type { KernelCall, ParallelRunner } from "./types.js";
import type { HostWorker, Platform } from "./platform.js";
import { compileBuilds, instantiate, newMemory } from "./loader.js";
import { QUEUE_CALLS, QUEUE_RECORD } from "./worker-source.js";

/** Numbers one call slot holds: a call takes 2 (function, argument count) plus its arguments. */
const SLOT_NUMBERS = 2048;
/** Slot layout: Int32 [0] call seq, [1] done seq, [2] call count (-1 quits, -2: take calls from the shared queue at [3]), [4] error; Float64 calls from byte 64. */
const SLOT_BYTES = 64 + 8 * SLOT_NUMBERS;
/** Queue layout in the shared memory: Int32 [0] next call, [1] call count; Float64 records from byte 64. */
const QUEUE_BYTES = 64 + 8 * QUEUE_RECORD * QUEUE_CALLS;
/** A worker silent this long is taken for dead (no single kernel call runs anywhere near this). */
const WORKER_TIMEOUT_S = 120;
/**
 * Polls of a slot before a thread sleeps (a worker between rounds, the caller waiting for a worker): about
 * 20-40 us here. A sleeping thread takes 50-100 us to wake up (futex round trip on a 2-core VM, Node 20), which
 * a training step pays for each of its rounds (about 330 on the stories15M shape); polled, a round trip takes 1-3 us.
 */
const SPIN_POLLS = 20000;

export interface PoolOptions {
  /** Threads including the calling one (default: the host's core count). */
  threads?: number;
  /** Largest size the shared memory may grow to, in bytes (default 4 GiB). */
  maxBytes?: number;
  /** Use the relaxed SIMD build when it passes its self-test (default true). */
  relaxed?: boolean;
  /** Products reading fewer weight bytes than this stay on one thread (default 512 KiB). */
  minParallelBytes?: number;
  /** Polls of a call slot before a thread sleeps between rounds (default 20000, about 20-40 us, or 0 with more threads than the host's cores; 0: sleep at once). */
  spinPolls?: number;
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
    names: readonly string[],
    private readonly spinPolls: number,
  ) {
    this.index = new Map(names.map((n, i) => [n, i]));
    this.seqs = slots.map(() => NaN);
  }

  /** Whether the threads poll between rounds (see ParallelRunner.polls). */
  get polls(): boolean {
    return this.spinPolls > 0;
  }

  /** Function number of each export in the workers' table. */
  private readonly index: Map<string, number>;
  /** The shared queue's place in the core's memory (allocated on first use). */
  private queue = 0;
  /** Views of the shared queue over the memory's current buffer. */
  private views?: { buffer: ArrayBufferLike; head: Int32Array; rec: Float64Array };
  /** Each worker's call sequence of the round in flight (NaN: not started), reused from round to round. */
  private readonly seqs: number[];
  /** Each worker slot's Float64 calls (the slots never move). */
  private readonly slotCalls: Float64Array[] = [];

  /** Starts threads-1 workers sharing one memory with `pool.core` (a core whose large products run in parallel). */
  static async create(platform: Platform, opts: PoolOptions = {}): Promise<KernelPool> {
    const builds = await compileBuilds(platform, opts.relaxed ?? true);
    const module = builds.threadsRelaxed ?? builds.threads;
    if (!module) throw new PoolError("no shared-memory build of the wasm core can run here");
    const threads = Math.max(1, Math.floor(opts.threads ?? platform.hardwareThreads()));
    const maxBytes = opts.maxBytes ?? 65536 * 65536;
    // polling pays only while every thread has a core of its own: with more threads than cores a polling thread
    // holds a core another one is waiting for (4 threads on 2 cores trained 1.5x slower polling)
    const spinPolls = Math.max(0, Math.floor(opts.spinPolls ?? (threads > platform.hardwareThreads() ? 0 : SPIN_POLLS)));
    const memory = newMemory(true, Math.ceil(maxBytes / 65536));
    const core = instantiate(module, memory, builds.threadsRelaxed ? "threads-relaxed" : "threads", maxBytes);
    const names = Object.keys(core.instance.exports).filter((n) => typeof core.instance.exports[n] === "function");
    const workers: HostWorker[] = [];
    const slots: Int32Array[] = [];
    try {
      for (let i = 1; i < threads; i++) {
        const control = new SharedArrayBuffer(SLOT_BYTES);
        slots.push(new Int32Array(control));
        workers.push(platform.spawnWorker({ module, memory, control, names, spinPolls }));
      }
      await Promise.all(workers.map((w) => w.ready));
    } catch (e) {
      for (const w of workers) w.terminate();
      throw new PoolError(`kernel workers failed to start: ${(e as Error).message}`);
    }
    const pool = new KernelPool(core, threads, opts.minParallelBytes ?? 512 * 1024, workers, slots, names, spinPolls);
    core.parallel = pool;
    return pool;
  }

  /**
   * Runs parts[0] here and parts[i] on worker i-1, returning when all are done. A part that does not fit a
   * slot is cut into slot-sized pieces run in rounds (piece k of every part in round k), so each part's calls
   * keep their order; parts are independent of each other by contract.
   */
  run(parts: KernelCall[][]): void {
    if (this.disposed) throw new PoolError("pool is disposed");
    if (parts.length - 1 > this.workers.length) throw new PoolError(`${parts.length} parts for ${this.workers.length + 1} threads`);
    const pieces = parts.map((p, i) => (i === 0 ? [p] : slotPieces(p)));
    const rounds = Math.max(...pieces.map((p) => p.length));
    for (let k = 0; k < rounds; k++) this.round(pieces.map((p) => p[k] ?? []));
  }

  /** One round: parts[i] (each fitting a slot) handed to worker i-1, parts[0] run here. */
  private round(parts: KernelCall[][]): void {
    const seqs = this.seqs;
    seqs.fill(NaN);
    for (let i = 1; i < parts.length; i++) {
      if (parts[i].length === 0) continue;
      const slot = this.slots[i - 1];
      const f64 = (this.slotCalls[i - 1] ??= new Float64Array(slot.buffer, 64));
      let o = 0;
      for (const c of parts[i]) {
        const idx = this.index.get(c.fn);
        if (idx === undefined) throw new PoolError(`no kernel ${c.fn}`);
        f64[o++] = idx;
        f64[o++] = c.args.length;
        for (const a of c.args) f64[o++] = a;
      }
      slot[2] = parts[i].length;
      slot[4] = 0;
      const seq = (Atomics.load(slot, 0) + 1) | 0;
      seqs[i - 1] = seq;
      Atomics.store(slot, 0, seq);
      Atomics.notify(slot, 0);
    }
    let error: unknown;
    try {
      for (const c of parts[0]) this.core.fn(c.fn)(...c.args);
    } catch (e) {
      error = e;
    }
    this.await(seqs, error);
  }

  /**
   * Runs independent calls from a queue in the shared memory: each thread (this one included) takes the next
   * call not yet taken, so a thread slowed by other work on its core takes fewer. Returns when all are done.
   */
  runShared(calls: readonly KernelCall[]): void {
    if (this.disposed) throw new PoolError("pool is disposed");
    for (const c of calls) if (c.args.length > QUEUE_RECORD - 2) return this.run(spreadOver(calls, this.threads));
    for (let i = 0; i < calls.length; i += QUEUE_CALLS) this.sharedRound(calls, i, Math.min(calls.length, i + QUEUE_CALLS));
  }

  /** The shared queue's views (made again only when the memory has grown); the queue is allocated on first use. */
  private queueViews(): { head: Int32Array; rec: Float64Array } {
    if (!this.queue) this.queue = this.core.arena.alloc(QUEUE_BYTES);
    const buf = this.core.arena.memory.buffer;
    if (this.views?.buffer !== buf) {
      this.views = { buffer: buf, head: new Int32Array(buf, this.queue, 2), rec: new Float64Array(buf, this.queue + 64, QUEUE_CALLS * QUEUE_RECORD) };
    }
    return this.views;
  }

  /** Calls [from, to) through the shared queue (at most QUEUE_CALLS); nothing is allocated per call. */
  private sharedRound(calls: readonly KernelCall[], from: number, to: number): void {
    const { head, rec } = this.queueViews();
    for (let i = from; i < to; i++) {
      const c = calls[i];
      const idx = this.index.get(c.fn);
      if (idx === undefined) throw new PoolError(`no kernel ${c.fn}`);
      const o = (i - from) * QUEUE_RECORD;
      rec[o] = idx;
      rec[o + 1] = c.args.length;
      for (let k = 0; k < c.args.length; k++) rec[o + 2 + k] = c.args[k];
    }
    const count = to - from;
    Atomics.store(head, 1, count);
    Atomics.store(head, 0, 0);
    const seqs = this.seqs;
    for (let w = 0; w < this.slots.length; w++) {
      const slot = this.slots[w];
      slot[2] = -2;
      slot[3] = this.queue;
      slot[4] = 0;
      const seq = (Atomics.load(slot, 0) + 1) | 0;
      seqs[w] = seq;
      Atomics.store(slot, 0, seq);
      Atomics.notify(slot, 0);
    }
    let error: unknown;
    try {
      for (let i = Atomics.add(head, 0, 1); i < count; i = Atomics.add(head, 0, 1)) {
        const c = calls[from + i];
        this.core.fn(c.fn)(...c.args);
      }
    } catch (e) {
      error = e;
      // the calls left are not run: the workers are told there are none
      Atomics.store(head, 0, count);
    }
    this.await(seqs, error);
  }

  /** Waits for worker i's done sequence seqs[i] (NaN: not started), then throws the first error. */
  private await(seqs: readonly number[], error: unknown): void {
    for (let i = 0; i < seqs.length; i++) {
      if (Number.isNaN(seqs[i])) continue;
      const slot = this.slots[i];
      let waited = 0;
      for (let k = 0; k < this.spinPolls && Atomics.load(slot, 1) !== seqs[i]; k++);
      for (;;) {
        const v = Atomics.load(slot, 1);
        if (v === seqs[i]) break;
        if (Atomics.wait(slot, 1, v, 1000) === "timed-out" && ++waited >= WORKER_TIMEOUT_S) {
          throw new PoolError(`kernel worker ${i + 1} did not finish within ${WORKER_TIMEOUT_S} s`);
        }
      }
      if (slot[4] !== 0 && !error) error = new PoolError(`kernel failed on worker ${i + 1}`);
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

/** Calls dealt out to `threads` parts in turn (the fallback of runShared). */
function spreadOver(calls: readonly KernelCall[], threads: number): KernelCall[][] {
  const parts: KernelCall[][] = Array.from({ length: Math.min(threads, calls.length) }, () => []);
  calls.forEach((c, i) => parts[i % parts.length].push(c));
  return parts;
}

/** A worker's calls cut into pieces that each fit one slot (a single call never exceeds it). */
function slotPieces(calls: KernelCall[]): KernelCall[][] {
  const pieces: KernelCall[][] = [[]];
  let used = 0;
  for (const c of calls) {
    const size = 2 + c.args.length;
    if (size > SLOT_NUMBERS) throw new PoolError(`kernel call ${c.fn} has ${c.args.length} arguments, more than a slot holds`);
    if (used + size > SLOT_NUMBERS) {
      pieces.push([]);
      used = 0;
    }
    pieces[pieces.length - 1].push(c);
    used += size;
  }
  return pieces;
}
