// The scheduler: many requests over one base, continuous batching by adapter set, fair turns, KV reuse keyed by set.
import type { ActiveAdapter, Backend, BackendAdapter, BackendBatchContext, BackendSequence, SamplingOptions } from "../backends/backend.js";
import { DisposedError, InvalidArgumentError, QueueFullError } from "../errors.js";
import { adapterSetKey, normalizeAdapterSet, type AdapterSet, type AdapterSetInput } from "./adapter-set.js";
import { Generation, TokenText, stopList, type FinishReason, type GenerationResult } from "./generation.js";
import { Histogram } from "./latency.js";
import { FairQueue } from "./fair-queue.js";
import { ArrivalGather } from "./gather.js";
import { MixedSteps } from "./mixed-steps.js";
import { ParkedStates, commonPrefix } from "./prefix-cache.js";
import { keptPrefixLimit, planEvaluation, sharedInvocation, isAloraOnly, type EvalPlan } from "./kv-plan.js";
import { TurnPolicy } from "./turns.js";
import type { GenerateOptions } from "./session.js";

export interface SchedulerOptions {
  /** Sequences decoded at once (default 4). */
  slots?: number;
  /** Requests that may wait for a slot (default 64); beyond it `generate` throws QueueFullError. */
  queue?: number;
  /** Tokens each sequence can hold (default: the runtime's context size). */
  contextSize?: number;
  /**
   * Steps one adapter set keeps its turn while other sets wait (backends that apply one set per context).
   * Default: chosen from measurements, so the live swap between turns costs about 2.5% of the turn (1 to 16).
   */
  turnTokens?: number;
  /** Bytes of parked KV states kept for reuse (default 256 MiB; 0 turns parking off). */
  cacheBytes?: number;
  /** Fewest cached tokens worth parking or restoring (default 32). */
  parkMinTokens?: number;
  /**
   * Longest wait, ms, before a step that starts a prompt while more requests of its group (its set where sets
   * take turns) were recently in flight at once than are now, or requests are on their way (see `receiving`):
   * the others' prompts then share that step (see ArrivalGather). A lone client never waits. Default: one
   * decode step's measured time, at most 10 ms; 0 turns it off.
   */
  gatherMs?: number;
}

export interface ScheduleOptions extends Omit<GenerateOptions, "reuseCache"> {
  /** Reuse cached KV states of a prompt prefix computed under the same adapter set (default true). */
  reuseCache?: boolean;
  /** Keep generating past end-of-generation tokens (benchmarks). */
  ignoreEos?: boolean;
  /** Control tokens written in a text prompt are read as such (chat templates). */
  special?: boolean;
}

/** What the scheduler needs from its runtime. */
export interface SchedulerHost {
  readonly backend: Backend;
  readonly contextSize: number;
  /** Backend adapter for a loaded name; throws AdapterNameError when it is not loaded. */
  resolveAdapter(name: string): BackendAdapter;
  defaultScale(name: string): number;
  /** The invocation sequence of a loaded aLoRA adapter; undefined for a plain one. */
  invocation(name: string): readonly number[] | undefined;
  recordTokens(r: GenerationResult): void;
  schedulerClosed(s: Scheduler): void;
}

export interface SchedulerStats {
  slots: number;
  contextSize: number;
  queued: number;
  running: number;
  /** Running sequences per adapter set ("" is the base). */
  activeBySet: Record<string, number>;
  /** Requests waiting per adapter set. */
  queuedBySet: Record<string, number>;
  counts: {
    requests: number;
    finished: number;
    aborted: number;
    rejected: number;
    promptTokens: number;
    reusedPromptTokens: number;
    /** Of those, tokens computed by the base for a request of another set (an aLoRA request's prefix before its invocation, or the base's). */
    reusedBaseTokens: number;
    generatedTokens: number;
    steps: number;
    swaps: number;
    /** Requests placed on a slot (or parked state) holding their set's states, and ones that were not. */
    hits: number;
    misses: number;
    /** Slots whose states of another set were dropped (after parking, where possible). */
    evictions: number;
    parked: number;
    restored: number;
    /** decodeBatch calls (backends that batch mixed sets: one per step) and the sequence steps they carried. */
    mixedBatchCalls: number;
    mixedBatchRows: number;
    /** Steps that waited for prompts on their way (see `gatherMs`). */
    gatherWaits: number;
  };
  parkedBytes: number;
  /** Steps a set keeps its turn now, the mean step time and the measured cost a live swap adds to a step. */
  turnTokens: number;
  stepMs: number;
  swapExtraMs: number;
  timeToFirstToken: Histogram;
  timePerOutputToken: Histogram;
  memoryBytes: number;
}

/** Histogram bounds in seconds. */
const TTFT_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TPOT_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

interface Task {
  readonly id: number;
  /**
   * Cache key of the set the request's steps run with: adapter identities with scales (never names: a reloaded
   * name is another adapter); "" when that is the base (an aLoRA set whose invocation is not in the prompt).
   */
  readonly key: string;
  /** Which adapters evaluate which prompt tokens (base, plain, or aLoRA from its invocation on). */
  readonly plan: EvalPlan;
  /** The set by names, for stats and results. */
  readonly set: AdapterSet;
  readonly label: string;
  readonly active: readonly ActiveAdapter[];
  readonly promptTokens: number[];
  readonly maxTokens: number;
  readonly maxTokensAsked: number;
  readonly sampling: SamplingOptions;
  readonly stops: string[];
  readonly ignoreEos: boolean;
  readonly reuseCache: boolean;
  readonly signal: AbortSignal | undefined;
  readonly g: Generation;
  readonly submittedAt: number;
  detach: () => void;
  startedAt: number;
  firstAt: number;
  lastAt: number;
  reused: number;
  slot: Slot | null;
  out: TokenText | null;
  started: boolean;
  done: boolean;
}

interface Slot {
  readonly seq: BackendSequence;
  /** Key of the states the sequence holds (null: none), and the set by names. */
  key: string | null;
  /** States before this position were computed by the base (see KvOrigin). */
  baseEnd: number;
  label: string | null;
  task: Task | null;
  lastUsed: number;
}

const adapterIds = new WeakMap<BackendAdapter, number>();
let nextAdapterId = 0;
function adapterId(a: BackendAdapter): number {
  let id = adapterIds.get(a);
  if (id === undefined) adapterIds.set(a, (id = ++nextAdapterId));
  return id;
}

/** The cache key of an active set: entries sharing one loaded adapter add their scales, as backends apply them. */
export function activeSetKey(active: readonly ActiveAdapter[]): string {
  const by = new Map<number, number>();
  for (const a of active) by.set(adapterId(a.adapter), (by.get(adapterId(a.adapter)) ?? 0) + a.scale);
  return [...by].filter(([, s]) => s !== 0).sort((x, y) => x[0] - y[0]).map(([id, s]) => `${id}*${s}`).join(",");
}

const nextTick = () => new Promise<void>((r) => setImmediate(r));
/** The gathering group of every request (backends that put every set in one step). */
const ANY = "*";

export class Scheduler {
  readonly slots: number;
  readonly queueLimit: number;
  readonly contextSize: number;
  private ctx: BackendBatchContext | null = null;
  private opening: Promise<BackendBatchContext> | null = null;
  /** Set where the backend batches mixed sets: every running sequence advances in one decodeBatch call per step. */
  private mixed: MixedSteps | null = null;
  private readonly slotList: Slot[] = [];
  private readonly queue = new FairQueue<Task>();
  private readonly turns: TurnPolicy;
  private appliedKey: string | null = null;
  private appliedActive: readonly ActiveAdapter[] = [];
  private readonly parked: ParkedStates;
  private readonly parkMinTokens: number;
  private readonly gather = new ArrivalGather();
  private readonly gatherMs: number | undefined;
  private receivingCount = 0;
  private looping = false;
  private lock: Promise<unknown> = Promise.resolve();
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | null = null;
  private clock = 0;
  private taskSerial = 0;
  private disposed = false;
  private readonly finishedWaiters = new Set<() => void>();
  private readonly counts: SchedulerStats["counts"] = {
    requests: 0, finished: 0, aborted: 0, rejected: 0, promptTokens: 0, reusedPromptTokens: 0, reusedBaseTokens: 0, generatedTokens: 0,
    steps: 0, swaps: 0, hits: 0, misses: 0, evictions: 0, parked: 0, restored: 0, mixedBatchCalls: 0, mixedBatchRows: 0, gatherWaits: 0,
  };
  private readonly ttft = new Histogram(TTFT_BOUNDS);
  private readonly tpot = new Histogram(TPOT_BOUNDS);

  constructor(
    private readonly host: SchedulerHost,
    options: SchedulerOptions = {},
  ) {
    this.slots = options.slots ?? 4;
    this.queueLimit = options.queue ?? 64;
    this.contextSize = options.contextSize ?? host.contextSize;
    if (!Number.isInteger(this.slots) || this.slots < 1 || this.slots > 256) throw new InvalidArgumentError("slots must be a whole number from 1 to 256");
    if (!(Number.isInteger(this.queueLimit) || this.queueLimit === Infinity) || this.queueLimit < 0) throw new InvalidArgumentError("queue must be a whole number >= 0");
    if (!Number.isInteger(this.contextSize) || this.contextSize < 8) throw new InvalidArgumentError("contextSize must be a whole number >= 8");
    if (options.turnTokens !== undefined && (!Number.isInteger(options.turnTokens) || options.turnTokens < 1)) {
      throw new InvalidArgumentError("turnTokens must be a whole number >= 1");
    }
    const cacheBytes = options.cacheBytes ?? 256 * 2 ** 20;
    if (!(cacheBytes >= 0)) throw new InvalidArgumentError("cacheBytes must be >= 0");
    this.turns = new TurnPolicy(options.turnTokens);
    this.parkMinTokens = options.parkMinTokens ?? 32;
    this.gatherMs = options.gatherMs;
    if (this.gatherMs !== undefined && !(this.gatherMs >= 0)) throw new InvalidArgumentError("gatherMs must be >= 0");
    this.parked = new ParkedStates(cacheBytes);
  }

  /** Create the batch context now (otherwise on the first request). */
  async ready(): Promise<void> {
    await this.context();
  }

  private context(): Promise<BackendBatchContext> {
    if (this.ctx) return Promise.resolve(this.ctx);
    this.opening ??= this.host.backend.createBatchContext({ slots: this.slots, contextSize: this.contextSize }).then((ctx) => {
      this.ctx = ctx;
      this.mixed = MixedSteps.for(this.host.backend, ctx);
      return ctx;
    });
    this.opening.catch(() => (this.opening = null));
    return this.opening;
  }

  /** Tokens of a text prompt as this scheduler would evaluate them. */
  tokenize(prompt: string, options: { addBos?: boolean; special?: boolean } = {}): number[] {
    return this.host.backend.tokenize(prompt, options.addBos ?? true, options.special ?? false);
  }

  /**
   * Queue a generation with its own adapter set. Iterate the returned object for text pieces, or await
   * `.result`. Throws at once for bad arguments (InvalidArgumentError, AdapterNameError), a full queue
   * (QueueFullError) or a disposed scheduler.
   */
  generate(adapters: AdapterSetInput, prompt: string | readonly number[], o: ScheduleOptions = {}): Generation {
    if (this.disposed) throw new DisposedError("scheduler");
    const set = normalizeAdapterSet(adapters, (n) => this.host.defaultScale(n));
    const active = set.map(([name, scale]) => ({ adapter: this.host.resolveAdapter(name), scale }));
    const planned = set.map(([name]) => ({ name, invocation: this.host.invocation(name) }));
    if (isAloraOnly(planned)) sharedInvocation(planned); // one invocation per set (InvalidArgumentError)
    const maxTokensAsked = o.maxTokens ?? 64;
    if (!Number.isInteger(maxTokensAsked) || maxTokensAsked < 0) throw new InvalidArgumentError("maxTokens must be a whole number >= 0");
    const temperature = o.temperature ?? 0;
    if (!(temperature >= 0)) throw new InvalidArgumentError("temperature must be >= 0");
    const topP = o.topP ?? 0.95;
    if (!(topP > 0 && topP <= 1)) throw new InvalidArgumentError("topP must be in (0, 1]");
    const topK = o.topK ?? 40;
    if (!Number.isInteger(topK) || topK < 0) throw new InvalidArgumentError("topK must be a whole number >= 0");
    const seed = o.seed ?? 0;
    if (!Number.isInteger(seed)) throw new InvalidArgumentError("seed must be a whole number");
    const promptTokens = typeof prompt === "string" ? this.tokenize(prompt, { addBos: o.addBos, special: o.special }) : [...prompt];
    if (promptTokens.length === 0) throw new InvalidArgumentError("empty prompt (and no BOS token)");
    if (promptTokens.length >= this.contextSize) {
      throw new InvalidArgumentError(`prompt has ${promptTokens.length} tokens; the context holds ${this.contextSize}`);
    }
    if (this.queue.size - this.freeSlots() >= this.queueLimit) {
      this.counts.rejected++;
      throw new QueueFullError(this.queue.size, this.retryAfterMs());
    }
    const g = new Generation();
    const plan = planEvaluation(planned, activeSetKey(active), promptTokens);
    const task: Task = {
      id: ++this.taskSerial,
      key: plan.key,
      plan,
      set,
      label: adapterSetKey(set),
      active: plan.path === "alora-inactive" ? [] : active,
      promptTokens,
      maxTokens: Math.min(maxTokensAsked, this.contextSize - promptTokens.length),
      maxTokensAsked,
      sampling: { temperature, topK, topP, seed },
      stops: stopList(o.stop),
      ignoreEos: o.ignoreEos ?? false,
      reuseCache: o.reuseCache ?? true,
      signal: o.signal,
      g,
      submittedAt: performance.now(),
      startedAt: 0,
      firstAt: 0,
      lastAt: 0,
      reused: 0,
      slot: null,
      out: null,
      started: false,
      done: false,
      detach: () => undefined,
    };
    this.counts.requests++;
    this.queue.push(task.key, task);
    this.gather.arrived(task.key, this.inFlight(task.key));
    this.gather.arrived(ANY, this.inFlight(ANY));
    // An abort while waiting removes the request at once; a running one stops at the next step.
    const onAbort = () => this.abortWaiting(task);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    g.abortSignal.addEventListener("abort", onAbort, { once: true });
    task.detach = () => {
      o.signal?.removeEventListener("abort", onAbort);
      g.abortSignal.removeEventListener("abort", onAbort);
    };
    if (o.signal?.aborted) this.abortWaiting(task);
    this.kick();
    return g;
  }

  /** `generate` without streaming. */
  complete(adapters: AdapterSetInput, prompt: string | readonly number[], options: ScheduleOptions = {}): Promise<GenerationResult> {
    return this.generate(adapters, prompt, options).result;
  }

  /** Requests running or waiting, of one set (by key) or of all (ANY). */
  private inFlight(group: string): number {
    let n = 0;
    for (const s of this.slotList) if (s.task && !s.task.done && (group === ANY || s.task.key === group)) n++;
    for (const t of this.queue.items()) if (group === ANY || t.key === group) n++;
    return n;
  }

  /**
   * A request is on its way (a server is reading it, or a new connection has not sent its request yet): a step
   * that starts a prompt may wait for it (see `gatherMs`). Call the returned function once it was handed to
   * `generate` or will not be.
   */
  receiving(): () => void {
    this.receivingCount++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.receivingCount--;
    };
  }

  /**
   * Before a step that starts the next waiting prompt: when requests are on their way, or its group (the
   * requests that can share a step) had more in flight at once recently than now, wait for the others, at
   * most one decode step's time.
   */
  private async gatherPrompts(): Promise<void> {
    const next = this.queue.peek();
    if (!next || !this.ctx || this.disposed) return; // no prompt pending: nothing to gather, nothing to measure
    // a wait longer than a decode step costs more than the step it could save
    const maxWaitMs = this.gatherMs ?? Math.min(10, this.turns.stepMs);
    if (!(maxWaitMs > 0)) return;
    const group = this.ctx.adapterScope === "context" ? next.key : ANY;
    const room = () => this.freeSlots() - this.queue.size;
    const missing = () => Math.max(this.gather.expected(group, this.inFlight(group), room()), Math.min(this.receivingCount, room()));
    await this.gather.wait(group, missing, () => this.inFlight(group), maxWaitMs);
  }

  private freeSlots(): number {
    let n = this.slots - this.slotList.length;
    for (const s of this.slotList) if (!s.task) n++;
    return n;
  }

  private retryAfterMs(): number {
    return Math.max(1000, Math.round(this.turns.stepMs * 64));
  }

  private abortWaiting(task: Task): void {
    if (task.slot || task.done) {
      this.kick(); // running: the loop ends it after the current step
      return;
    }
    if (this.queue.remove(task.key, task)) this.settle(task, "abort");
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    this.idle = new Promise((r) => (this.idleResolve = r));
    void this.loop();
  }

  /** Runs `fn` exclusively of the loop's steps (backend state changes outside the loop). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async loop(): Promise<void> {
    try {
      // requests that arrived together are admitted together (their prompts share the first step)
      await nextTick();
      for (;;) {
        await this.gatherPrompts();
        const progressed = await this.exclusive(() => this.tick());
        if (!progressed) break;
        await nextTick(); // let I/O (new requests, disconnects) in between steps
      }
    } catch (e) {
      // a failure outside any one request (the context could not be created): fail everything waiting
      const all = [...this.slotList.flatMap((s) => (s.task ? [s.task] : [])), ...this.queue.drain()];
      for (const s of this.slotList) s.task = null;
      for (const t of all) this.fail(t, e);
    } finally {
      this.looping = false;
      this.idleResolve?.();
      if (!this.disposed && (this.queue.size > 0 || this.slotList.some((s) => s.task))) this.kick();
    }
  }

  /** One round: end stopped sequences, admit waiting requests, advance one turn. False when idle. */
  private async tick(): Promise<boolean> {
    for (const s of this.slotList) {
      const t = s.task;
      if (t && (t.g.aborted || t.signal?.aborted || this.disposed)) await this.end(t, "abort");
    }
    if (this.queue.size > 0 && !this.disposed) {
      const ctx = await this.context();
      await this.admit(ctx);
    }
    const turn = this.pickTurn();
    if (turn.length === 0) return false;
    await this.step(turn);
    return true;
  }

  private async admit(ctx: BackendBatchContext): Promise<void> {
    while (this.queue.size > 0) {
      // Sequences of one context are all opened at once, so slot i is sequence i (see place()); contexts of
      // their own per sequence are opened as needed: an empty one before another set's states are dropped.
      while (ctx.adapterScope === "context" && this.slotList.length < this.slots) this.openSlot(ctx);
      if (this.slotList.length < this.slots && !this.slotList.some((s) => !s.task && s.key === null)) this.openSlot(ctx);
      const free = this.slotList.filter((s) => !s.task);
      if (free.length === 0) return;
      const task = this.queue.next();
      if (!task) return;
      try {
        await this.place(task, free, ctx);
      } catch (e) {
        const slot = task.slot;
        if (slot) {
          this.mixed?.end(slot.seq);
          slot.task = null;
          slot.key = null;
          await slot.seq.clear().catch(() => undefined);
        }
        this.fail(task, e);
      }
    }
  }

  private openSlot(ctx: BackendBatchContext): void {
    this.slotList.push({ seq: ctx.sequence(), key: null, baseEnd: Infinity, label: null, task: null, lastUsed: 0 });
  }

  /**
   * Where a request runs when its set is already running: llama.cpp splits a batch wherever the sequence ids
   * in it are not consecutive, so the free slot right after (or before) the set's running slots keeps its
   * step in one batch. Null when the set is not running or both neighbours are taken.
   */
  private beside(task: Task, free: Slot[]): Slot | null {
    if (this.ctx?.adapterScope !== "context") return null;
    const ids = this.slotList.flatMap((s, i) => (s.task && !s.task.done && s.key === task.key ? [i] : []));
    if (ids.length === 0) return null;
    for (const i of [ids[ids.length - 1] + 1, ids[0] - 1]) {
      const s = this.slotList[i];
      if (s && free.includes(s)) return s;
    }
    return null;
  }

  /**
   * Put a request on a slot, reusing states cached under its own key only, or computed by the base before its
   * aLoRA invocation (keptPrefixLimit); an aLoRA request's tokens before the invocation are evaluated here, with
   * the base.
   */
  private async place(task: Task, free: Slot[], ctx: BackendBatchContext): Promise<void> {
    const prompt = task.promptTokens;
    const limit = prompt.length - 1; // at least one token is evaluated
    let best: Slot | null = null;
    let bestPrefix = 0;
    if (task.reuseCache) {
      for (const s of free) {
        if (s.key === null) continue;
        const keep = keptPrefixLimit({ key: s.key, baseEnd: s.baseEnd }, task.plan);
        if (keep === 0) continue;
        const p = Math.min(keep, commonPrefix(s.seq.cachedTokens, prompt));
        if (!best || p > bestPrefix) [best, bestPrefix] = [s, p];
      }
    }
    const parked = task.reuseCache ? this.parked.lookup(task.plan, prompt) : null;
    const useParked = parked !== null && Math.min(parked.prefix, limit) >= this.parkMinTokens && parked.prefix >= bestPrefix + this.parkMinTokens;
    // A slot beside the set's running ones wins unless another holds a prefix worth keeping.
    const near = this.beside(task, free);
    const keepPrefix = best !== null && (bestPrefix >= this.parkMinTokens || bestPrefix >= limit);
    let slot: Slot;
    let reuse = 0;
    if (best && !useParked && (!near || keepPrefix || near === best)) {
      slot = best;
      reuse = Math.min(bestPrefix, limit);
      if (best.key !== task.key) this.counts.reusedBaseTokens += reuse;
    } else {
      // beside the set, else an empty slot, else the least recently used one (its states parked first when worth keeping)
      slot = near ?? free.find((s) => s.key === null) ?? free.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
      if (slot.key !== null) {
        if (slot.key !== task.key) this.counts.evictions++;
        if (slot.seq.cachedTokens.length >= this.parkMinTokens) await this.parked.park(slot.seq, { key: slot.key, baseEnd: slot.baseEnd });
        await slot.seq.clear();
        slot.key = null;
      }
      if (useParked && (await this.parked.restore(parked.state, slot.seq))) {
        reuse = Math.min(parked.prefix, limit);
        if (parked.state.key !== task.key) this.counts.reusedBaseTokens += reuse;
      }
    }
    if (reuse > 0) this.counts.hits++;
    else this.counts.misses++;
    if (reuse === 0) {
      if (slot.seq.cachedTokens.length > 0) await slot.seq.clear();
    } else if (reuse < slot.seq.cachedTokens.length) await slot.seq.truncate(reuse);
    slot.key = task.key;
    slot.baseEnd = task.plan.baseEnd;
    slot.label = task.label;
    slot.task = task;
    task.slot = slot;
    slot.lastUsed = ++this.clock;
    task.reused = reuse;
    task.startedAt = performance.now();
    let from = reuse;
    if (task.plan.path === "alora" && task.plan.start! > reuse) {
      // the tokens before the invocation, with the base; the step that follows attaches the request's set
      if (ctx.adapterScope === "sequence") slot.seq.setAdapters([]);
      else if (this.appliedKey !== "") {
        await ctx.setAdapters([]);
        this.appliedKey = "";
        this.appliedActive = [];
        this.counts.swaps++;
      }
      await slot.seq.evaluate(prompt.slice(reuse, task.plan.start));
      from = task.plan.start!;
    }
    if (ctx.adapterScope === "sequence") slot.seq.setAdapters(task.active);
    task.out = new TokenText(this.host.backend, prompt, task.stops, task.g, task.ignoreEos);
    if (this.mixed) this.mixed.begin(slot.seq, prompt.slice(from), task.sampling);
    else slot.seq.begin(prompt.slice(from), task.sampling);
    this.counts.promptTokens += prompt.length;
    this.counts.reusedPromptTokens += reuse;
  }

  /**
   * The sequences to advance this step (see TurnPolicy); every set at once where sequences carry their own sets
   * (in one decodeBatch call where the backend batches mixed sets, see MixedSteps).
   */
  private pickTurn(): Slot[] {
    const running = this.slotList.filter((s) => s.task && !s.task.done);
    const candidates = running.map((s) => ({ key: s.key!, started: s.task!.started, id: s.task!.id }));
    if (this.ctx?.adapterScope === "sequence") {
      return this.turns.track(candidates).flatMap((k) => running.filter((s) => s.key === k));
    }
    const key = this.turns.pick(candidates);
    return key === null ? [] : running.filter((s) => s.key === key);
  }

  private async step(turn: Slot[]): Promise<void> {
    const ctx = this.ctx!;
    let swapped = false;
    if (ctx.adapterScope === "context") {
      const task = turn[0].task!;
      if (this.appliedKey !== task.key) {
        await ctx.setAdapters(task.active);
        this.appliedKey = task.key;
        this.appliedActive = task.active;
        this.counts.swaps++;
        swapped = true;
      }
    }
    const t0 = performance.now();
    const results = this.mixed ? await this.mixed.advance(turn.map((s) => s.seq)) : await Promise.allSettled(turn.map((s) => s.seq.advance()));
    const now = performance.now();
    this.counts.steps++;
    // one-token steps, plain and right after a swap, choose the turn length
    if (turn.every((s) => s.task!.started)) this.turns.observe(now - t0, swapped, turn[0].key!, turn.length);
    for (let i = 0; i < turn.length; i++) {
      const task = turn[i].task!;
      const r = results[i];
      if (r.status === "rejected") {
        await this.end(task, "abort", r.reason);
        continue;
      }
      if (!task.started) {
        task.started = true;
        task.firstAt = now;
        this.ttft.observe((now - task.submittedAt) / 1000);
      }
      task.lastAt = now;
      const reason = task.out!.add(r.value);
      if (reason) await this.end(task, reason);
      else if (task.out!.tokens.length >= task.maxTokens) await this.end(task, task.maxTokens < task.maxTokensAsked ? "context" : "length");
      else if (task.g.aborted || task.signal?.aborted || this.disposed) await this.end(task, "abort");
    }
  }

  /** End a running request and free its slot (its states stay cached under its key). */
  private async end(task: Task, reason: FinishReason, error?: unknown): Promise<void> {
    const slot = task.slot!;
    task.done = true;
    this.mixed?.end(slot.seq);
    try {
      await slot.seq.end();
    } catch (e) {
      error ??= e;
    }
    slot.task = null;
    slot.lastUsed = ++this.clock;
    if (error !== undefined) {
      // a failed evaluation leaves states of unknown shape: forget them
      slot.key = null;
      await slot.seq.clear().catch(() => undefined);
      this.fail(task, error);
      return;
    }
    this.settle(task, reason);
  }

  private settle(task: Task, reason: FinishReason): void {
    task.done = true;
    task.detach();
    const end = performance.now();
    const out = task.out;
    const tokens = out?.tokens ?? [];
    const text = out ? out.finish(reason) : "";
    const n = tokens.length;
    const decodeMs = task.firstAt > 0 ? task.lastAt - task.firstAt : 0;
    if (n > 1 && decodeMs > 0) this.tpot.observe(decodeMs / (n - 1) / 1000);
    const prefillTokens = task.promptTokens.length - task.reused;
    const prefillMs = task.firstAt > 0 ? task.firstAt - task.startedAt : 0;
    const result: GenerationResult = {
      text,
      tokens,
      promptTokens: task.promptTokens.length,
      reusedPromptTokens: task.reused,
      generatedTokens: n,
      finishReason: reason,
      adapters: Object.fromEntries(task.set),
      adapterChanges: 0,
      adapterPath: task.plan.path,
      ...(task.plan.start !== undefined ? { invocationStart: task.plan.start } : {}),
      timings: {
        prefillTokens,
        prefillMs,
        decodeTokens: Math.max(0, n - 1),
        decodeMs,
        totalMs: end - task.submittedAt,
        prefillTokensPerSecond: prefillMs > 0 ? (prefillTokens / prefillMs) * 1000 : 0,
        decodeTokensPerSecond: decodeMs > 0 ? ((n - 1) / decodeMs) * 1000 : 0,
        queueMs: (task.startedAt || end) - task.submittedAt,
      },
    };
    if (reason === "abort") this.counts.aborted++;
    else this.counts.finished++;
    this.counts.generatedTokens += n;
    if (task.out) this.host.recordTokens(result);
    task.g.finish(result);
    this.notifyFinished();
  }

  private fail(task: Task, error: unknown): void {
    task.done = true;
    task.detach();
    this.counts.aborted++;
    task.g.fail(error);
    this.notifyFinished();
  }

  private notifyFinished(): void {
    for (const w of [...this.finishedWaiters]) w();
  }

  /** Resolves once `pred` holds, checked after each request ends. */
  private until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!pred()) return;
        this.finishedWaiters.delete(check);
        resolve();
      };
      this.finishedWaiters.add(check);
    });
  }

  /**
   * @internal Before an adapter is freed: requests waiting with it fail, running ones finish, and every state
   * computed with it is dropped and the adapter detached.
   */
  async dropAdapter(adapter: BackendAdapter, error: Error): Promise<void> {
    const id = `${adapterId(adapter)}*`;
    const uses = (key: string | null) => key !== null && key.split(",").some((p) => p.startsWith(id));
    for (const t of this.queue.drain(uses)) this.fail(t, error);
    await this.until(() => !this.slotList.some((s) => s.task && uses(s.task.key)));
    await this.exclusive(async () => {
      for (const s of this.slotList) {
        if (s.task || !uses(s.key)) continue;
        await s.seq.clear();
        s.key = null;
        if (this.ctx?.adapterScope === "sequence") s.seq.setAdapters([]);
      }
      if (this.ctx?.adapterScope === "sequence") {
        for (const s of this.slotList) if (!s.task) s.seq.setAdapters([]);
      } else if (this.ctx && this.appliedActive.some((a) => a.adapter === adapter)) {
        await this.ctx.setAdapters([]);
        this.appliedKey = "";
        this.appliedActive = [];
      }
      await this.parked.drop(uses);
    });
  }

  /** Queue, slots, counters and latency histograms. */
  stats(): SchedulerStats {
    const activeBySet: Record<string, number> = {};
    for (const s of this.slotList) if (s.task && !s.task.done) activeBySet[s.task.label] = (activeBySet[s.task.label] ?? 0) + 1;
    const queuedBySet: Record<string, number> = {};
    for (const t of this.queue.items()) queuedBySet[t.label] = (queuedBySet[t.label] ?? 0) + 1;
    return {
      slots: this.slots,
      contextSize: this.contextSize,
      queued: this.queue.size,
      running: this.slotList.filter((s) => s.task && !s.task.done).length,
      activeBySet,
      queuedBySet,
      counts: {
        ...this.counts,
        parked: this.parked.counts.parked,
        restored: this.parked.counts.restored,
        mixedBatchCalls: this.mixed?.calls ?? 0,
        mixedBatchRows: this.mixed?.rows ?? 0,
        gatherWaits: this.gather.waits,
      },
      parkedBytes: this.parked.bytes,
      turnTokens: this.turns.turnTokens,
      stepMs: this.turns.stepMs,
      swapExtraMs: this.turns.swapExtraMs,
      timeToFirstToken: this.ttft,
      timePerOutputToken: this.tpot,
      memoryBytes: (this.ctx?.memoryBytes ?? 0) + this.parked.bytes,
    };
  }

  /** Adapter sets (by name) whose states the slots hold, least recently used first. */
  cachedSets(): string[] {
    return this.slotList.filter((s) => s.key !== null).sort((a, b) => a.lastUsed - b.lastUsed).map((s) => s.label!);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Stop: waiting requests fail with DisposedError, running ones end after their current token; frees the context. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const err = new DisposedError("scheduler");
    for (const t of this.queue.drain()) this.fail(t, err);
    this.kick();
    await this.idle;
    await this.exclusive(async () => {
      const ctx = this.ctx ?? (this.opening ? await this.opening.catch(() => null) : null);
      this.ctx = null;
      this.mixed = null;
      this.slotList.length = 0;
      await ctx?.dispose();
      await this.parked.dispose();
    });
    this.host.schedulerClosed(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
