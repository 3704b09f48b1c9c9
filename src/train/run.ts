// A LoRA training run on the wasm core: batches in a seeded order, AdamW steps, held-out loss, atomic checkpoints with the optimizer state, resume bit for bit, a stop on divergence.
import { TrainDivergedError, TrainInputError } from "../errors.js";
import { mulberry32 } from "../random.js";
import { openGguf } from "../gguf/reader.js";
import { createPool, loadCore, type Core, type KernelPool } from "../core/index.js";
import { referenceConfig } from "./reference/config.js";
import { loraFromGguf, TARGETS, type LoraAdapter, type Target } from "./reference/lora.js";
import type { SeededStart } from "./engine/adapter.js";
import type { TrainSequence } from "./reference/model.js";
import { AdamWF32, CoreSumOfSquares, freeFrozenBase, loadFrozenBase, TrainableAdapter, TrainingEngine } from "./engine/index.js";
import { readCheckpoint, trainedAdapterGguf, writeCheckpoint, writeTrainedAdapter, type PairValues } from "./adapter-file.js";
import type { GgufWriteInput } from "../gguf/writer.js";

export interface TrainRunOptions {
  /** The base model (GGUF). */
  readonly model: string;
  readonly train: readonly TrainSequence[];
  /** Held-out sequences whose mean loss is reported. */
  readonly eval?: readonly TrainSequence[];
  readonly rank: number;
  /** Default: 2 x rank (scale 2). */
  readonly alpha?: number;
  readonly targets?: readonly Target[];
  readonly lr: number;
  /** Optimizer steps; default: `epochs` passes over the training sequences. */
  readonly steps?: number;
  readonly epochs?: number;
  /** Sequences per step (default 1). */
  readonly batch?: number;
  /** Tokens per sequence at most. */
  readonly ctx: number;
  readonly seed?: number;
  /** Default: 10% of the steps, at most 100. */
  readonly warmupSteps?: number;
  readonly weightDecay?: number;
  /** Default 1. */
  readonly maxGradNorm?: number;
  readonly threads?: number;
  /** 8-bit activations in the forward products of quantized weights (default false). */
  readonly x8?: boolean;
  readonly recompute?: boolean;
  /** Held-out loss every this many steps and at the last (default: 10). */
  readonly evalEvery?: number;
  /** Checkpoint file, written every `checkpointEvery` steps (default 50) and at the end. */
  readonly checkpoint?: string;
  readonly checkpointEvery?: number;
  /** A checkpoint of the same run to continue from. */
  readonly resume?: string;
  /** An adapter GGUF to start from (its rank, alpha and targets). */
  readonly init?: string;
  /** Stop (with a checkpoint) after this many steps of the run's `steps`; the schedule stays that of `steps`. */
  readonly stopAfter?: number;
}

export interface TrainStepEvent {
  readonly kind: "step";
  /** 1-based. */
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly evalLoss?: number;
  readonly lr: number;
  readonly gradNorm: number;
  /** Tokens whose loss counted in this step. */
  readonly tokens: number;
  /** Tokens run through the model (forward and backward) per second, over the run so far. */
  readonly tokensPerSecond: number;
  readonly elapsedMs: number;
  readonly etaMs: number;
}

/** The trained adapter: values in memory, and how to write it. */
export interface TrainedAdapter {
  readonly architecture: string;
  readonly alpha: number;
  readonly pairs: readonly PairValues[];
  /** As a reference adapter (f64 copies, scale alpha / rank). */
  toLora(): LoraAdapter;
  write(path: string, type?: "f32" | "f16"): void;
  /** The adapter's GGUF content (what `write` writes), e.g. to apply it without a file. */
  gguf(type?: "f32" | "f16"): GgufWriteInput;
}

export interface TrainDoneEvent {
  readonly kind: "done";
  readonly steps: number;
  readonly adapter: TrainedAdapter;
  readonly evalLoss?: number;
  /** The held-out loss before the run's first step (the base's, for a fresh adapter). */
  readonly initialEvalLoss?: number;
  /** Bytes of activations and gradients the engine held, and of the base's weights. */
  readonly activationBytes: number;
  readonly baseBytes: number;
}

export type TrainEvent = TrainStepEvent | TrainDoneEvent;

const OPTIONS = "training options";

function check(ok: boolean, field: string, reason: string): void {
  if (!ok) throw new TrainInputError(OPTIONS, field, reason);
}

/** A seeded permutation of 0..n-1 (Fisher-Yates with mulberry32). */
function permutation(n: number, seed: number): number[] {
  const r = mulberry32(seed), p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Array k of `into` overwritten with the values of `from[k]` (same length). */
function take(into: readonly Float32Array[], k: number, from: readonly Float32Array[]): Float32Array {
  into[k].set(from[k]);
  return into[k];
}

/** Runs the training; yields a step event per step and a done event with the adapter. */
export async function* trainLora(o: TrainRunOptions): AsyncGenerator<TrainEvent, void, void> {
  check(Number.isInteger(o.rank) && o.rank >= 1, "rank", `must be a positive integer, got ${o.rank}`);
  check(Number.isFinite(o.lr) && o.lr > 0, "lr", `the learning rate must be a finite positive number, got ${o.lr}`);
  check(o.alpha === undefined || (Number.isFinite(o.alpha) && o.alpha > 0), "alpha", `must be a finite positive number, got ${o.alpha}`);
  const batch = o.batch ?? 1, seed = o.seed ?? 0;
  check(Number.isInteger(batch) && batch >= 1, "batch", `must be a positive integer, got ${batch}`);
  check(Number.isInteger(o.ctx) && o.ctx >= 2, "ctx", `must be an integer of at least 2, got ${o.ctx}`);
  check(o.train.length > 0, "data", "no training sequence");
  check(o.steps === undefined || (Number.isInteger(o.steps) && o.steps >= 1), "steps", `must be a positive integer, got ${o.steps}`);
  check(o.epochs === undefined || (Number.isFinite(o.epochs) && o.epochs > 0), "epochs", `must be a positive number, got ${o.epochs}`);
  const targets = o.targets ?? TARGETS;
  check(targets.length > 0 && targets.every((t) => TARGETS.includes(t)), "targets", `choose among ${TARGETS.join(",")}`);
  for (const s of [...o.train, ...(o.eval ?? [])]) check(s.tokens.length <= o.ctx, "ctx", `a sequence of ${s.tokens.length} tokens exceeds the context of ${o.ctx}`);
  const steps = o.steps ?? Math.max(1, Math.ceil(((o.epochs ?? 1) * o.train.length) / batch));

  const gguf = openGguf(o.model);
  const config = referenceConfig(gguf);
  let init: LoraAdapter | SeededStart;
  let alpha: number;
  if (o.init) {
    init = loraFromGguf(openGguf(o.init), config);
    const first = [...init.pairs.values()][0];
    alpha = first.scale * first.rank;
  } else {
    alpha = o.alpha ?? 2 * o.rank;
    init = { seeded: true, rank: o.rank, alpha, targets, seed };
  }
  const settings = JSON.stringify({ model: gguf.path.split(/[\\/]/).pop(), rank: o.rank, alpha, targets, lr: o.lr, steps, batch, ctx: o.ctx, seed, train: o.train.length, x8: o.x8 ?? false });

  let pool: KernelPool | undefined;
  let core: Core;
  if ((o.threads ?? 1) > 1) {
    pool = await createPool({ threads: o.threads });
    core = pool.core;
  } else core = await loadCore();
  const base = loadFrozenBase(core, gguf);
  const adapter = new TrainableAdapter(core, config, init);
  const engine = new TrainingEngine(core, base, adapter, { maxTokens: o.ctx, x8: o.x8, recompute: o.recompute });
  const opt = new AdamWF32(adapter.parameters().map((p) => p.length), {
    lr: o.lr, totalSteps: steps, warmupSteps: o.warmupSteps ?? Math.min(100, Math.floor(steps / 10)),
    weightDecay: o.weightDecay ?? 0, maxGradNorm: o.maxGradNorm ?? 1,
  });
  // the optimizer's update runs in the core: each array's moments pass through two scratch blocks there
  const longest = Math.max(...adapter.pairs.map((p) => Math.max(p.rank * p.nIn, p.nOut * p.rank)));
  const optScratch = { m: core.arena.alloc(4 * longest), v: core.arena.alloc(4 * longest) };
  const paramPtrs = adapter.pairs.flatMap((p) => [p.a.ptr, p.b.ptr]), gradPtrs = adapter.pairs.flatMap((p) => [p.ga, p.gb]);
  const gradSquares = new CoreSumOfSquares(core, opt.state.m.map((m) => m.length));
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    core.arena.release(optScratch.m);
    core.arena.release(optScratch.v);
    gradSquares.dispose();
    engine.dispose();
    adapter.dispose();
    freeFrozenBase(core, base);
    pool?.dispose();
    opt.state.m.length = 0;
    opt.state.v.length = 0;
  };
  const values = (): PairValues[] => {
    const p = adapter.parameters();
    return adapter.pairs.map((pair, i) => ({ pair, a: p[2 * i].slice(), b: p[2 * i + 1].slice() }));
  };
  const saveCheckpoint = (step: number) => {
    if (o.checkpoint) writeCheckpoint(o.checkpoint, config.architecture, alpha, values(), opt.state.m, opt.state.v, { step, settings });
  };
  try {
    let start = 0;
    if (o.resume) {
      const c = readCheckpoint(o.resume, adapter.pairs);
      if (c.settings !== settings) throw new TrainInputError(o.resume, "training.settings", `the checkpoint is of another run: ${c.settings}, this run: ${settings}`);
      adapter.setParameters(c.params);
      c.m.forEach((m, i) => opt.state.m[i].set(m));
      c.v.forEach((v, i) => opt.state.v[i].set(v));
      opt.state.steps = start = c.step;
    }
    const n = o.train.length;
    const orders = new Map<number, number[]>();
    const sequenceAt = (k: number) => {
      const epoch = Math.floor(k / n);
      let p = orders.get(epoch);
      if (!p) {
        orders.clear();
        orders.set(epoch, (p = permutation(n, (seed * 1000003 + epoch) >>> 0)));
      }
      return o.train[p[k % n]];
    };
    const evalLoss = () => {
      if (!o.eval?.length) return undefined;
      let sum = 0, count = 0;
      for (const s of o.eval) {
        const r = engine.loss([s]);
        sum += r.loss * r.tokens;
        count += r.tokens;
      }
      return sum / count;
    };
    const initialEvalLoss = evalLoss();
    const t0 = performance.now();
    let seen = 0, lastEval: number | undefined;
    const end = Math.min(steps, o.stopAfter ?? steps);
    for (let s = start; s < end; s++) {
      const b = Array.from({ length: batch }, (_, j) => sequenceAt(s * batch + j));
      const r = engine.lossAndGradients(b);
      const ss = gradSquares.of(gradPtrs);
      if (!Number.isFinite(r.loss) || !Number.isFinite(ss)) {
        saveCheckpoint(s);
        throw new TrainDivergedError(s, o.checkpoint, Number.isFinite(r.loss) ? "the gradients are not finite" : `the loss is ${r.loss}`);
      }
      const rep = opt.stepInCore(core, paramPtrs, gradPtrs, optScratch, ss);
      seen += b.reduce((x, q) => x + q.tokens.length - 1, 0);
      const last = s + 1 === end;
      if (o.checkpoint && (last || (s + 1) % (o.checkpointEvery ?? 50) === 0)) saveCheckpoint(s + 1);
      const ev = last || (s + 1) % (o.evalEvery ?? 10) === 0 ? evalLoss() : undefined;
      if (ev !== undefined) lastEval = ev;
      const elapsedMs = performance.now() - t0, done = s + 1 - start;
      yield {
        kind: "step", step: s + 1, steps, loss: r.loss, evalLoss: ev, lr: rep.lr, gradNorm: rep.gradNorm, tokens: r.tokens,
        tokensPerSecond: seen / (elapsedMs / 1000), elapsedMs, etaMs: (elapsedMs / done) * (steps - s - 1),
      };
    }
    // the adapter's values go into the first moments' arrays (of the same shapes, needed no more): no new copy
    // on top of the engine's memory at its peak
    const params = adapter.parameters();
    const pairs: PairValues[] = adapter.pairs.map((pair, i) => ({ pair, a: take(opt.state.m, 2 * i, params), b: take(opt.state.m, 2 * i + 1, params) }));
    const activationBytes = engine.activationBytes, baseBytes = base.bytes;
    // the engine, the optimizer state and the base go before the adapter is handed out
    release();
    const trained: TrainedAdapter = {
      architecture: config.architecture, alpha, pairs,
      toLora: () => ({ pairs: new Map(pairs.map((p) => [p.pair.key, { rank: p.pair.rank, nIn: p.pair.nIn, nOut: p.pair.nOut, scale: alpha / p.pair.rank, a: Float64Array.from(p.a), b: Float64Array.from(p.b) }])) }),
      write: (path, type = "f32") => writeTrainedAdapter(path, config.architecture, alpha, pairs, type, "lora-edge trained adapter"),
      gguf: (type = "f32") => trainedAdapterGguf(config.architecture, alpha, pairs, type, "lora-edge trained adapter"),
    };
    yield { kind: "done", steps, adapter: trained, evalLoss: lastEval, initialEvalLoss, activationBytes, baseBytes };
  } finally {
    release();
  }
}
