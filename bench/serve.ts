// Serving benchmark: loopback clients against lora-edge serve on a generated 100M Q4_0 model, concurrent against one at a time.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Runtime } from "../src/runtime/index.js";
import { percentile } from "../src/runtime/latency.js";
import { mulberry32 } from "../src/random.js";
import { synthAdapter, synthModel, type ModelShape } from "../src/tools/synth.js";

/** About 97M parameters: 12 layers of n_embd 768 / n_ff 2048 (85M) and an 8000-token vocabulary (12M). */
const SHAPE_100M: ModelShape = {
  id: "bench-100m", title: "generated 100M llama", architecture: "llama", nEmbd: 768, nLayer: 12, nHead: 12, nHeadKv: 12,
  nFf: 2048, nVocab: 8000, contextLength: 2048, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false,
};

interface Request {
  set: string; // "" = the base
  prompt: number[];
}

interface Sample {
  ttftMs: number;
  tpotMs: number;
  tokens: number;
}

interface RunFigures {
  wallMs: number;
  tokens: number;
  tokensPerSecond: number;
  ttftMs: { p50: number; p99: number };
  tpotMs: { p50: number; p99: number };
}

interface CaseResult {
  clients: number;
  sets: number;
  requests: number;
  concurrent: RunFigures;
  oneAtATime: RunFigures;
  /** Concurrent aggregate tokens/s over one-at-a-time. */
  speedup: number;
  /**
   * The decoding alone (after each first token): the clients' aggregate rate from the median time per output
   * token, over one client's. What the speed-up would be if prompts took no time.
   */
  decodeSpeedup: number;
  /** Share of the one-at-a-time wall time spent before first tokens (prompts, and the requests' way in). */
  promptShare: number;
  swaps: number;
  /** Sequence steps per decodeBatch call in the concurrent runs (backends that batch mixed sets; else 0). */
  batchRowsPerCall: number;
}

const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
const p99 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.99);

/** One streamed completion: time to the first text, mean time per later token, tokens generated. */
async function stream(url: string, q: Request, maxTokens: number): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      prompt: q.prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true },
      ...(q.set ? { model: q.set } : {}),
    }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let tokens = 0;
  let buf = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i).replace(/^data: /, "");
      buf = buf.slice(i + 2);
      if (event === "[DONE]") continue;
      const data = JSON.parse(event) as { choices: { text: string }[]; usage?: { completion_tokens: number } };
      if (first === 0 && data.choices[0]?.text) first = performance.now();
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  const end = performance.now();
  return { ttftMs: first - t0, tpotMs: tokens > 1 ? (end - first) / (tokens - 1) : 0, tokens };
}

function figures(samples: Sample[], wallMs: number): RunFigures {
  const tokens = samples.reduce((s, x) => s + x.tokens, 0);
  const ttft = samples.map((s) => s.ttftMs);
  const tpot = samples.map((s) => s.tpotMs);
  return { wallMs, tokens, tokensPerSecond: (tokens / wallMs) * 1000, ttftMs: { p50: med(ttft), p99: p99(ttft) }, tpotMs: { p50: med(tpot), p99: p99(tpot) } };
}

async function oneAtATime(url: string, qs: Request[], maxTokens: number): Promise<RunFigures> {
  const t0 = performance.now();
  const out: Sample[] = [];
  for (const q of qs) out.push(await stream(url, q, maxTokens));
  return figures(out, performance.now() - t0);
}

/** Requests for `clients` clients over `sets` adapter sets (client c uses set c mod sets), distinct prompts. */
function workload(clients: number, sets: number, perClient: number, promptTokens: number, seed: number): Request[][] {
  const r = mulberry32(seed);
  return Array.from({ length: clients }, (_, c) =>
    Array.from({ length: perClient }, () => ({
      set: `a${c % sets}`,
      prompt: [1, ...Array.from({ length: promptTokens - 1 }, () => 3 + Math.floor(r() * 7990))],
    })),
  );
}

interface Bench {
  url: string;
  metrics(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** Prometheus text into name{labels} -> value. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** `lora-edge serve` in a process of its own (the clients' work stays out of the server's event loop). */
async function serve(
  model: string,
  adapters: string[],
  backend: "native" | "wasm",
  threads: number,
  parallel: number,
  contextSize: number,
  env: Record<string, string> = {},
): Promise<Bench> {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
  const args = [cli, "serve", "-m", model, ...adapters.flatMap((a, i) => ["-a", `a${i}=${a}`]), "--backend", backend, "--gpu", "off",
    "--threads", String(threads), "--parallel", String(parallel), "--queue", "256", "--ctx", String(contextSize), "--port", "0"];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      const m = / on (http:\/\/[^ ]+)\/v1 /.exec(err);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`lora-edge serve exited with ${code}: ${err}`)));
  });
  return {
    url,
    async metrics() {
      return parseMetrics(await (await fetch(`${url}/metrics`)).text());
    },
    async close() {
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await done;
    },
  };
}

/** Pools the samples of several runs; tokens/s is the median of the runs. */
function pooled(runs: { samples: Sample[]; wallMs: number }[]): RunFigures {
  const f = figures(runs.flatMap((r) => r.samples), runs.reduce((n, r) => n + r.wallMs, 0));
  f.tokensPerSecond = med(runs.map((r) => (r.samples.reduce((n, x) => n + x.tokens, 0) / r.wallMs) * 1000));
  return f;
}

async function runCases(
  b: Bench,
  cases: [number, number][],
  o: { perClient: number; maxTokens: number; promptTokens: number; rounds: number },
  log: (s: string) => void,
): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  const counters = async () => {
    const m = await b.metrics();
    return [m.get("lora_edge_adapter_swaps_total") ?? 0, m.get("lora_edge_mixed_batch_calls_total") ?? 0, m.get("lora_edge_mixed_batch_rows_total") ?? 0];
  };
  for (const [clients, sets] of cases) {
    const serialRuns: { samples: Sample[]; wallMs: number }[] = [];
    const concRuns: { samples: Sample[]; wallMs: number }[] = [];
    const ratios: number[] = [];
    let swapCount = 0;
    let batchCalls = 0;
    let batchRows = 0;
    // rounds alternate which mode goes first, so drift of the machine hits both alike
    for (let round = 0; round < o.rounds; round++) {
      // the same shape of requests with prompts of their own in each mode: the mode that runs second would
      // otherwise find every prompt's states cached by the first and skip its prompts
      const seed = clients * 100 + sets * 10 + round;
      const w = workload(clients, sets, o.perClient, o.promptTokens, seed);
      const ws = workload(clients, sets, o.perClient, o.promptTokens, seed + 5000);
      const serial = async () => {
        const t0 = performance.now();
        const samples: Sample[] = [];
        for (const q of ws.flat()) samples.push(await stream(b.url, q, o.maxTokens));
        serialRuns.push({ samples, wallMs: performance.now() - t0 });
      };
      const conc = async () => {
        const c0 = await counters();
        const t0 = performance.now();
        const all = await Promise.all(w.map(async (qs) => {
          const got: Sample[] = [];
          for (const q of qs) got.push(await stream(b.url, q, o.maxTokens));
          return got;
        }));
        concRuns.push({ samples: all.flat(), wallMs: performance.now() - t0 });
        const c1 = await counters();
        swapCount += c1[0] - c0[0];
        batchCalls += c1[1] - c0[1];
        batchRows += c1[2] - c0[2];
      };
      if (round % 2 === 0) {
        await serial();
        await conc();
      } else {
        await conc();
        await serial();
      }
      const rate = (r: { samples: Sample[]; wallMs: number }) => r.samples.reduce((n, x) => n + x.tokens, 0) / r.wallMs;
      ratios.push(rate(concRuns[round]) / rate(serialRuns[round]));
    }
    const conc = pooled(concRuns);
    const serial = pooled(serialRuns);
    const r: CaseResult = {
      clients, sets, requests: clients * o.perClient, concurrent: conc, oneAtATime: serial, speedup: med(ratios),
      decodeSpeedup: (clients * serial.tpotMs.p50) / conc.tpotMs.p50,
      promptShare: serialRuns.reduce((n, x) => n + x.samples.reduce((m, y) => m + y.ttftMs, 0), 0) / serialRuns.reduce((n, x) => n + x.wallMs, 0),
      swaps: swapCount,
      batchRowsPerCall: batchCalls > 0 ? batchRows / batchCalls : 0,
    };
    log(`  ${clients} clients, ${sets} set(s): ${conc.tokensPerSecond.toFixed(1)} tok/s against ${serial.tokensPerSecond.toFixed(1)} one at a time (${r.speedup.toFixed(2)}x); ` +
      `TTFT p50/p99 ${conc.ttftMs.p50.toFixed(1)}/${conc.ttftMs.p99.toFixed(1)} ms (alone ${serial.ttftMs.p50.toFixed(1)}/${serial.ttftMs.p99.toFixed(1)}); ` +
      `TPOT p50/p99 ${conc.tpotMs.p50.toFixed(2)}/${conc.tpotMs.p99.toFixed(2)} ms (alone ${serial.tpotMs.p50.toFixed(2)}/${serial.tpotMs.p99.toFixed(2)})` +
      `; decoding alone ${r.decodeSpeedup.toFixed(2)}x, prompts ${(100 * r.promptShare).toFixed(0)}% of the one-at-a-time time` +
      (r.batchRowsPerCall > 0 ? `; ${r.batchRowsPerCall.toFixed(2)} sequences per shared pass` : ""));
    out.push(r);
  }
  return out;
}

/** Parking a sequence's states and restoring them, against evaluating its prompt again, for one long prompt. */
async function parkVersusEvaluate(rt: Runtime, promptTokens: number, rounds: number): Promise<{ promptTokens: number; restoreMs: number; reevaluateMs: number; ratio: number; parkedBytes: number }> {
  const sch = rt.scheduler({ slots: 1, parkMinTokens: 16, contextSize: promptTokens + 64 });
  const r = mulberry32(7);
  const prompt = [1, ...Array.from({ length: promptTokens - 1 }, () => 3 + Math.floor(r() * 7990))];
  const other = [1, 5, 6, 7];
  const restore: number[] = [];
  const again: number[] = [];
  let parkedBytes = 0;
  try {
    await sch.complete({ a0: 1 }, prompt, { maxTokens: 1 });
    for (let i = 0; i < rounds; i++) {
      await sch.complete({ a1: 1 }, other, { maxTokens: 1 }); // takes the slot: a0's states are parked
      parkedBytes = sch.stats().parkedBytes;
      let t = performance.now();
      const x = await sch.complete({ a0: 1 }, prompt, { maxTokens: 1 });
      restore.push(performance.now() - t);
      if (x.reusedPromptTokens !== promptTokens - 1) throw new Error(`expected a restore, reused ${x.reusedPromptTokens}`);
      await sch.complete({ a1: 1 }, other, { maxTokens: 1 });
      t = performance.now();
      await sch.complete({ a0: 1 }, prompt, { maxTokens: 1, reuseCache: false });
      again.push(performance.now() - t);
    }
  } finally {
    await sch.dispose();
  }
  const restoreMs = med(restore);
  const reevaluateMs = med(again);
  return { promptTokens, restoreMs, reevaluateMs, ratio: reevaluateMs / restoreMs, parkedBytes };
}

/**
 * Memory of serving four sets against one, in a server process of its own: 8 clients on one set (every slot's KV
 * pages touched), then 8 clients over four sets. glibc runs it with a fixed mmap threshold so that freed large
 * blocks go back at once and RSS follows what is live (llama.cpp reallocates compute buffers after each swap;
 * that makes swaps slower, so the throughput cases run without it).
 */
async function memoryGrowth(model: string, adapters: string[], threads: number, maxTokens: number) {
  const b = await serve(model, adapters, "native", threads, 8, 256, { MALLOC_MMAP_THRESHOLD_: "131072" });
  try {
    const burst = (sets: number) => Promise.all(workload(8, sets, 1, 16, 40 + sets).map((qs) => stream(b.url, qs[0], maxTokens)));
    await burst(1);
    const one = await b.metrics();
    await burst(4);
    await burst(4);
    const four = await b.metrics();
    const modelBytes = fs.statSync(model).size;
    const rssOneSetBytes = one.get("process_resident_memory_bytes")!;
    const rssFourSetsBytes = four.get("process_resident_memory_bytes")!;
    // the context's own buffers may grow for graphs with adapters: that is not the base
    const contextGrowth = four.get("lora_edge_context_memory_bytes")! - one.get("lora_edge_context_memory_bytes")!;
    return {
      modelBytes,
      rssOneSetBytes,
      rssFourSetsBytes,
      contextBytes: four.get("lora_edge_context_memory_bytes")!,
      extraBaseCopies: Math.max(0, rssFourSetsBytes - rssOneSetBytes - contextGrowth) / modelBytes,
    };
  } finally {
    await b.close();
  }
}

/**
 * What bounds the time to first token of prompts that arrive together: evaluating four 16-token prompts in one
 * step against one alone (in process, interleaved rounds, medians of the step that returns the first token).
 */
async function promptBurst(rt: Runtime, rounds: number): Promise<{ oneMs: number; fourMs: number; ratio: number }> {
  const sch = rt.scheduler({ slots: 4 });
  const r = mulberry32(3);
  const prompt = () => [1, ...Array.from({ length: 15 }, () => 3 + Math.floor(r() * 7990))];
  const o = { maxTokens: 1, ignoreEos: true, reuseCache: false };
  const one: number[] = [];
  const four: number[] = [];
  try {
    for (let i = 0; i <= rounds; i++) {
      const a = (await sch.complete({ a0: 1 }, prompt(), o)).timings.prefillMs;
      const b = Math.max(...(await Promise.all([0, 1, 2, 3].map(() => sch.complete({ a0: 1 }, prompt(), o)))).map((x) => x.timings.prefillMs));
      if (i === 0) continue; // warm-up
      one.push(a);
      four.push(b);
    }
  } finally {
    await sch.dispose();
  }
  return { oneMs: med(one), fourMs: med(four), ratio: med(four) / med(one) };
}

interface SwapStepFigures {
  /** Median one-token decode step of the same sequences, without a swap before it and right after a live swap. */
  plainMs: number;
  afterSwapMs: number;
  /** What the swap adds to the next step (llama.cpp rebuilds its scheduler and reserves its worst-case graphs after any change of adapters). */
  extraMs: number;
  /** The swap call itself. */
  swapMs: number;
  sequences: number;
}

/**
 * What a live swap adds to the next decode: the same batch of running sequences stepped in interleaved pairs,
 * one step plain, the next right after a live swap to the other adapter (in process, on the serving context).
 */
async function swapStep(rt: Runtime, sequences: number, steps: number): Promise<SwapStepFigures> {
  const ctx = await rt.backend.createBatchContext({ slots: sequences, contextSize: 256 });
  try {
    const sets = [0, 1].map((i) => [{ adapter: rt.resolveAdapter(`a${i}`), scale: 1 }]);
    const seqs = Array.from({ length: sequences }, () => ctx.sequence());
    await ctx.setAdapters(sets[0]);
    const r = mulberry32(7);
    for (const s of seqs) s.begin([1, ...Array.from({ length: 15 }, () => 3 + Math.floor(r() * 7990))], { temperature: 0, topK: 40, topP: 0.95, seed: 0 });
    const step = () => Promise.all(seqs.map((s) => s.advance()));
    await step(); // prompts
    await step();
    const plain: number[] = [];
    const after: number[] = [];
    const swap: number[] = [];
    for (let i = 0; i < steps; i++) {
      let t = performance.now();
      await step();
      plain.push(performance.now() - t);
      t = performance.now();
      await ctx.setAdapters(sets[(i + 1) % 2]);
      swap.push(performance.now() - t);
      t = performance.now();
      await step();
      after.push(performance.now() - t);
    }
    for (const s of seqs) await s.release();
    return { plainMs: med(plain), afterSwapMs: med(after), extraMs: med(after) - med(plain), swapMs: med(swap), sequences };
  } finally {
    await ctx.dispose();
  }
}

interface LayoutFigures {
  /** Aggregate tokens/s of 4 requests over 4 sets, one at a time, and all at once in each layout. */
  oneAtATime: number;
  sharedContext: number;
  contextPerSet: number;
  /** Memory of the contexts in each layout, bytes. */
  sharedContextBytes: number;
  contextPerSetBytes: number;
}

/**
 * The layout question, in process: one shared context whose sets take turns (the scheduler) against one context
 * per set (four sessions generating at once), same requests, interleaved rounds, medians.
 */
async function layouts(model: string, adapters: string[], threads: number, maxTokens: number, rounds: number): Promise<LayoutFigures> {
  const rt = await Runtime.open({ model, gpu: false, threads, contextSize: 256 });
  try {
    for (const [i, a] of adapters.entries()) await rt.adapters.load(`a${i}`, a);
    const sch = rt.scheduler({ slots: 4 });
    const sessions = [0, 1, 2, 3].map((i) => rt.session({ adapters: { [`a${i}`]: 1 } }));
    const opts = { maxTokens, ignoreEos: true };
    const reqs = () => workload(4, 4, 1, 16, 5).flat();
    const rate = async (run: () => Promise<{ generatedTokens: number }[]>) => {
      const t = performance.now();
      const rs = await run();
      return (rs.reduce((n, r) => n + r.generatedTokens, 0) / (performance.now() - t)) * 1000;
    };
    const serial: number[] = [];
    const shared: number[] = [];
    const perSet: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const a = await rate(async () => {
        const out = [];
        for (const q of reqs()) out.push(await sch.complete({ [q.set]: 1 }, q.prompt, opts));
        return out;
      });
      const b = await rate(() => Promise.all(reqs().map((q) => sch.complete({ [q.set]: 1 }, q.prompt, opts))));
      const c = await rate(() => Promise.all(reqs().map((q, i) => sessions[i].complete(q.prompt, { ...opts, reuseCache: false }))));
      if (r === 0) continue; // warm-up round
      serial.push(a);
      shared.push(b);
      perSet.push(c);
    }
    // ignoreEos is a scheduler option; sessions stop at end-of-generation tokens, which these prompts do not reach
    return {
      oneAtATime: med(serial),
      sharedContext: med(shared),
      contextPerSet: med(perSet),
      sharedContextBytes: sch.stats().memoryBytes,
      contextPerSetBytes: sessions.reduce((n, s) => n + s.memoryBytes, 0),
    };
  } finally {
    await rt.dispose();
  }
}

interface NativeServing {
  cases: CaseResult[];
  turn: { turnTokens: number; stepMs: number; swapExtraMs: number };
  memory: Awaited<ReturnType<typeof memoryGrowth>>;
}

/** The cases over llama.cpp in a server process, the turn figures it measured, and its memory over one and four sets. */
async function nativeServing(
  model: string,
  adapters: string[],
  threads: number,
  cases: [number, number][],
  opts: { perClient: number; maxTokens: number; promptTokens: number; rounds: number },
  log: (s: string) => void,
): Promise<NativeServing> {
  log(`native (llama.cpp) server process, ${threads} thread(s), ${opts.maxTokens} tokens per request, ${opts.perClient} request(s) per client`);
  const native = await serve(model, adapters, "native", threads, 8, 256);
  let nativeCases: CaseResult[];
  let after: Map<string, number>;
  try {
    await oneAtATime(native.url, workload(4, 4, 1, 16, 98).flat(), 4); // warm-up: every set once
    nativeCases = await runCases(native, cases, opts, log);
    after = await native.metrics();
  } finally {
    await native.close();
  }
  const turn = {
    turnTokens: after.get("lora_edge_turn_tokens")!,
    stepMs: after.get("lora_edge_decode_step_seconds")! * 1000,
    swapExtraMs: after.get("lora_edge_swap_extra_seconds")! * 1000,
  };
  log(`  a one-token decode step takes ${turn.stepMs.toFixed(2)} ms; a live swap adds ${turn.swapExtraMs.toFixed(2)} ms to the next one; a set keeps its turn for ${turn.turnTokens} steps`);
  const memory = await memoryGrowth(model, adapters, threads, opts.maxTokens);
  log(`  server RSS ${(memory.rssOneSetBytes / 2 ** 20).toFixed(0)} MiB after 8 clients on one set, ${(memory.rssFourSetsBytes / 2 ** 20).toFixed(0)} MiB after 8 clients over four (model file ${(memory.modelBytes / 2 ** 20).toFixed(0)} MiB, serving context ${(memory.contextBytes / 2 ** 20).toFixed(0)} MiB)`);
  return { cases: nativeCases, turn, memory };
}

interface NativeInProcess {
  layout: LayoutFigures;
  park: Awaited<ReturnType<typeof parkVersusEvaluate>>;
  promptBurst: Awaited<ReturnType<typeof promptBurst>>;
  swapStep: SwapStepFigures[];
}

/** llama.cpp in process: the layout question, parking against re-evaluation, a burst of prompts, and what a live swap adds. */
async function nativeInProcess(model: string, adapters: string[], threads: number, maxTokens: number, log: (s: string) => void): Promise<NativeInProcess> {
  log("in process: one shared context taking turns against one context per set (4 requests over 4 sets)");
  const layout = await layouts(model, adapters, threads, maxTokens, 2);
  log(`  one at a time ${layout.oneAtATime.toFixed(1)} tok/s; shared context ${layout.sharedContext.toFixed(1)} tok/s (${(layout.sharedContextBytes / 2 ** 20).toFixed(0)} MiB); ` +
    `a context per set ${layout.contextPerSet.toFixed(1)} tok/s (${(layout.contextPerSetBytes / 2 ** 20).toFixed(0)} MiB)`);
  const prt = await Runtime.open({ model, gpu: false, threads, contextSize: 512 });
  let park;
  let burst;
  let swaps: SwapStepFigures[] = [];
  try {
    for (const [i, a] of adapters.entries()) await prt.adapters.load(`a${i}`, a);
    park = await parkVersusEvaluate(prt, 400, 5);
    burst = await promptBurst(prt, 8);
    swaps = [await swapStep(prt, 1, 24), await swapStep(prt, 4, 24)];
  } finally {
    await prt.dispose();
  }
  log(`  four 16-token prompts evaluated in one step take ${burst.fourMs.toFixed(1)} ms against ${burst.oneMs.toFixed(1)} ms for one (${burst.ratio.toFixed(2)}x): the floor of a burst's time to first token`);
  for (const w of swaps) {
    log(`  ${w.sequences} sequence(s): a decode step takes ${w.plainMs.toFixed(2)} ms, ${w.afterSwapMs.toFixed(2)} ms right after a live swap ` +
      `(+${w.extraMs.toFixed(2)} ms; the swap call ${w.swapMs.toFixed(3)} ms)`);
  }
  log(`  parked states of a ${park.promptTokens}-token prompt restored in ${park.restoreMs.toFixed(1)} ms against ${park.reevaluateMs.toFixed(1)} ms to evaluate it again (${park.ratio.toFixed(1)}x); ${(park.parkedBytes / 2 ** 20).toFixed(1)} MiB parked`);
  return { layout, park, promptBurst: burst, swapStep: swaps };
}

/** The targets measured on llama.cpp. */
function nativeTargets(native: NativeServing, inProcess: NativeInProcess) {
  const find = (c: number, s: number) => native.cases.find((x) => x.clients === c && x.sets === s)!;
  const burst = inProcess.promptBurst;
  // a lone client: the same requests served one at a time, in the same rounds (less exposed to the machine's drift
  // than another case's). The target compares like with like, p99 with p99 ("p99 time to first token with 4
  // clients <= 3x a lone client's"); the ratio to the lone client's p50 is reported beside it.
  const loneP99 = find(4, 1).oneAtATime.ttftMs.p99;
  const lone = find(4, 1).oneAtATime.ttftMs.p50;
  // what the process grew while serving four sets after one, in model-file units
  const growth = native.memory.extraBaseCopies;
  return {
    nativeOneSetFourClients: { value: find(4, 1).speedup, goal: 1.5, met: find(4, 1).speedup >= 1.5 },
    nativeFourSetsFourClients: { value: find(4, 4).speedup, goal: 0.9, met: find(4, 4).speedup >= 0.9 },
    ttftP99FourClientsOverLone: {
      value: find(4, 1).concurrent.ttftMs.p99 / loneP99,
      goal: 3,
      met: find(4, 1).concurrent.ttftMs.p99 / loneP99 <= 3,
      note: `p99 of 4 clients on one set against the p99 of the same requests one at a time (${loneP99.toFixed(1)} ms, p50 ${lone.toFixed(1)} ms; ` +
        `1 client's p50 ${find(1, 1).oneAtATime.ttftMs.p50.toFixed(1)} ms); over the lone p50 the p99 is ${(find(4, 1).concurrent.ttftMs.p99 / lone).toFixed(2)}x, ` +
        `their p50 ${(find(4, 1).concurrent.ttftMs.p50 / lone).toFixed(2)}x; four prompts that arrive together ` +
        `take ${burst.ratio.toFixed(2)}x one prompt's time to evaluate even in one step, the floor for the last of them; ` +
        `on 4 sets the four prompts cannot share a step (${find(4, 4) ? (find(4, 4).concurrent.ttftMs.p99 / find(4, 4).oneAtATime.ttftMs.p50).toFixed(2) : "-"}x)`,
    },
    // RSS growth from serving one set to serving four, in model-file units: a copy of the base per set would add about 3
    baseCopiesInMemory: { value: 1 + growth, goal: 1, met: growth < 0.5 },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== "--"),
    options: {
      json: { type: "boolean" },
      threads: { type: "string" },
      tokens: { type: "string" },
      requests: { type: "string" },
      rounds: { type: "string" },
      "skip-wasm": { type: "boolean" },
      /** Only the wasm engine's case (its target; the others are reported as skipped). */
      "skip-native": { type: "boolean" },
      keep: { type: "string" },
      cases: { type: "string" },
    },
  });
  const threads = values.threads ? Number(values.threads) : 1;
  const maxTokens = values.tokens ? Number(values.tokens) : 64;
  const perClient = values.requests ? Number(values.requests) : 2;
  const rounds = values.rounds ? Number(values.rounds) : 2;
  const log = (s: string) => process.stderr.write(s + "\n");
  const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-serve-"));
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, "bench-100m-Q4_0.gguf");
  const adapters = [0, 1, 2, 3].map((i) => path.join(dir, `bench-100m-lora-${i}.gguf`));
  try {
    if (!fs.existsSync(model)) {
      log("generating a 100M-parameter Q4_0 model ...");
      synthModel(model, { shape: SHAPE_100M, type: "Q4_0", seed: 1 });
    }
    adapters.forEach((a, i) => fs.existsSync(a) || synthAdapter(a, { shape: SHAPE_100M, rank: 16, seed: 11 + i }));
    const allCases: [number, number][] = [[1, 1], [4, 1], [4, 2], [4, 4], [8, 1], [8, 2], [8, 4]];
    // --cases 8x2,8x4 adds to 1x1, 4x1 and 4x4, which the targets need
    const chosen = values.cases?.split(",").map((c) => c.trim());
    const cases = chosen ? allCases.filter(([c, k]) => [...chosen, "1x1", "4x1", "4x4"].includes(`${c}x${k}`)) : allCases;
    const opts = { perClient, maxTokens, promptTokens: 16, rounds };

    const native = values["skip-native"] ? null : await nativeServing(model, adapters, threads, cases, opts, log);

    let wasmCase: CaseResult | undefined;
    if (!values["skip-wasm"]) {
      log(`wasm engine server process, ${threads} thread(s): 4 clients over 4 sets`);
      const wasm = await serve(model, adapters, "wasm", threads, 4, 256);
      try {
        await oneAtATime(wasm.url, workload(4, 4, 1, 16, 98).flat(), 4);
        [wasmCase] = await runCases(wasm, [[4, 4]], { ...opts, perClient: 1, maxTokens: Math.min(maxTokens, 32) }, log);
      } finally {
        await wasm.close();
      }
    }

    const inProcess = values["skip-native"] ? null : await nativeInProcess(model, adapters, threads, maxTokens, log);
    const skipped = (goal: number, why: string) => ({ value: null, goal, met: false, note: `skipped (${why})` });
    const nt = native && inProcess ? nativeTargets(native, inProcess) : null;
    const targets = {
      nativeOneSetFourClients: nt?.nativeOneSetFourClients ?? skipped(1.5, "--skip-native"),
      nativeFourSetsFourClients: nt?.nativeFourSetsFourClients ?? skipped(0.9, "--skip-native"),
      wasmFourSetsFourClients: wasmCase
        ? {
            value: wasmCase.speedup,
            goal: 2,
            met: wasmCase.speedup >= 2,
            note: `the four sets' sequences share each step's forward pass (one decodeBatch call per step, ${wasmCase.batchRowsPerCall.toFixed(2)} rows per call); ` +
              `decoding alone ${wasmCase.decodeSpeedup.toFixed(2)}x, prompts ${(100 * wasmCase.promptShare).toFixed(0)}% of the one-at-a-time time`,
          }
        : skipped(2, "--skip-wasm"),
      ttftP99FourClientsOverLone: nt?.ttftP99FourClientsOverLone ?? skipped(3, "--skip-native"),
      baseCopiesInMemory: nt?.baseCopiesInMemory ?? skipped(1, "--skip-native"),
    };
    const result = {
      model: { path: model, bytes: fs.statSync(model).size, shape: "generated 100M llama, Q4_0, 4 rank-16 adapters on 7 projections" },
      threads,
      maxTokens,
      requestsPerClient: perClient,
      ...(native && inProcess ? { native: { cases: native.cases, turn: native.turn, memory: native.memory, ...inProcess } } : {}),
      ...(wasmCase ? { wasm: { cases: [wasmCase] } } : {}),
      targets,
    };
    if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    else {
      for (const [k, t] of Object.entries(targets)) {
        process.stdout.write(`${k.padEnd(30)} ${t.value === null ? "-" : t.value.toFixed(2)}  goal ${t.goal}  ${t.met ? "met" : "NOT met"}${"note" in t ? ` (${t.note})` : ""}\n`);
      }
    }
  } finally {
    if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
