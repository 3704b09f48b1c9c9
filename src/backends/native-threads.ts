// Picks llama.cpp's CPU thread count by timing decode steps on the loaded model: the fewest threads within 10% of the fastest.
import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";

/** Mean decode time per token at one thread count. */
export interface ThreadTiming {
  threads: number;
  msPerToken: number;
  /** Timed tokens. */
  tokens: number;
  /** Found far slower than the best and no longer timed (its time per token is then a lower bound). */
  dropped: boolean;
}

export interface ThreadProbe {
  /** The thread count chosen. */
  threads: number;
  timings: ThreadTiming[];
  /** Time the probe took, ms. */
  ms: number;
  /** Settles once every context of the probe is freed: a step given up on finishes in the background first. */
  settled: Promise<void>;
}

/** A count within this factor of the fastest counts as fast as it: fewer threads leave cores to the rest of the machine. */
export const THREAD_TOLERANCE = 1.1;
/** Decode time the timed steps aim at, in all. */
const BUDGET_MS = 200;
const ROUNDS = 3;
/** A count this much slower than the best so far stops being timed. */
const DROP_FACTOR = 3;

/** Counts to try: 1, the powers of two below `max`, and `max`. */
export function threadCandidates(max: number): number[] {
  const out: number[] = [];
  for (let t = 1; t < max; t *= 2) out.push(t);
  out.push(Math.max(1, max));
  return out;
}

/** Of the counts not dropped, the fewest threads whose time per token is within THREAD_TOLERANCE of the fastest. */
export function pickThreads(timings: readonly ThreadTiming[]): number {
  const kept = timings.filter((t) => !t.dropped);
  const best = Math.min(...kept.map((t) => t.msPerToken));
  return Math.min(...kept.filter((t) => t.msPerToken <= best * THREAD_TOLERANCE).map((t) => t.threads));
}

interface Candidate {
  threads: number;
  ctx: LlamaContext;
  /** Greedy decoding that never stops by itself: each next() is one decode step. */
  steps: AsyncGenerator<Token, unknown>;
  ms: number[];
  dropped: boolean;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `p`'s result, or "late" when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "late"> {
  if (!Number.isFinite(ms)) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), Math.max(0, ms))));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Times single-token decode steps (what generation does after the prompt) at 1, 2, 4 ... `max` threads and
 * returns the fewest threads within 10% of the fastest mean time per token. The counts that keep up are timed
 * again in interleaved rounds, so a passing load hits them alike. Costs about BUDGET_MS of decoding plus one
 * small context per count (tens of ms each). A count far slower than the best is dropped after a few steps;
 * a step that overruns that limit is not waited for: it finishes in the background (`settled`).
 *
 * Why not simply all the cores: without an attached thread pool, llama.cpp's CPU backend starts its extra
 * threads for every graph and waits for them by spinning. Where the scheduler puts a new thread on the
 * caller's core (seen on a 2-core VM), or other processes hold the cores, a decode step then waits for
 * scheduler ticks: 2 threads decoded 1.3 to 80 times slower than 1 there, with single steps of over a second.
 */
export async function probeThreads(model: LlamaModel, max: number): Promise<ThreadProbe> {
  const t0 = performance.now();
  const counts = threadCandidates(max);
  if (counts.length === 1) return { threads: counts[0], timings: [], ms: 0, settled: Promise.resolve() };
  const bos = model.tokens.bos;
  const start = bos != null ? [bos] : model.tokenize("Once upon a time").slice(0, 1);
  if (start.length === 0) throw new Error("the model has no token to start decoding from");
  const all: Candidate[] = [];
  const background: Promise<void>[] = [];
  const close = async (c: Candidate) => {
    await c.steps.return(undefined); // after a pending step, if one is still running
    await c.ctx.dispose();
  };
  try {
    let best = Infinity;
    let leader: Candidate | undefined;
    let stepsPerRound = 0;
    /** Times up to `n` steps; drops the count once it is clearly slower than the best (the best is never dropped). */
    const time = async (c: Candidate, n: number) => {
      const limit = c === leader ? Infinity : DROP_FACTOR * best * n;
      let total = 0;
      for (let i = 1; i <= n; i++) {
        const t = performance.now();
        const step = c.steps.next();
        const r = await within(step, limit - total);
        const ms = performance.now() - t;
        c.ms.push(ms);
        total += ms;
        if (r === "late") {
          c.dropped = true;
          background.push(close(c).catch(() => {}));
          return;
        }
        if (r.done) throw new Error("decoding stopped");
        if (i >= 2 && total > limit * (i / n)) {
          c.dropped = true;
          await close(c);
          return;
        }
      }
    };
    // First round: each count in turn, 1 thread first; its step time sizes the rounds to the budget.
    for (const threads of counts) {
      const ctx = await model.createContext({ contextSize: 64, batchSize: 8, sequences: 1, threads });
      const c: Candidate = { threads, ctx, steps: ctx.getSequence().evaluate(start, { temperature: 0, yieldEogToken: true }), ms: [], dropped: false };
      all.push(c);
      if (stepsPerRound === 0) {
        await c.steps.next(); // the first step at one thread fills caches: not timed
        const t = performance.now();
        await c.steps.next();
        const step = Math.max(0.01, performance.now() - t);
        stepsPerRound = Math.max(4, Math.min(16, Math.floor(BUDGET_MS / (ROUNDS * counts.length * step))));
      }
      await time(c, stepsPerRound); // more threads: the first step counts (a slow start is what they cost)
      if (!c.dropped && mean(c.ms) < best) [best, leader] = [mean(c.ms), c];
    }
    // Further rounds, interleaved, for the counts that kept up.
    for (let round = 1; round < ROUNDS; round++) {
      for (const c of all) if (!c.dropped) await time(c, stepsPerRound);
      leader = all.filter((c) => !c.dropped).reduce((a, b) => (mean(b.ms) < mean(a.ms) ? b : a));
      best = mean(leader.ms);
    }
  } catch (e) {
    await Promise.all(background);
    throw e;
  } finally {
    for (const c of all) if (!c.dropped) await close(c);
  }
  const timings = all.map((c) => ({ threads: c.threads, msPerToken: mean(c.ms), tokens: c.ms.length, dropped: c.dropped }));
  return { threads: pickThreads(timings), timings, ms: performance.now() - t0, settled: Promise.all(background).then(() => {}) };
}
