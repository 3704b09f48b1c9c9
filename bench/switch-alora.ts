// aLoRA task-switch benchmark: time to first token after switching a long conversation to an adapter, as aLoRA (base prefix kept) and as plain LoRA (cleared, re-evaluated).
import fs from "node:fs";
import path from "node:path";
import { Runtime, type Session } from "../src/runtime/index.js";
import { percentile } from "../src/runtime/latency.js";
import { aloraInvocationKv } from "../src/gguf/alora.js";
import { writeGguf } from "../src/gguf/writer.js";
import { synthAdapter, synthAdapterSpec } from "../src/tools/synth.js";
import { Rng } from "../src/random.js";
import { SHAPE_100M, generated100M } from "./models.js";

/** Conversation lengths measured; the target is read at the last. */
export const ALORA_LENGTHS = [500, 1000, 2000] as const;
/** The invocation (three ids of the generated vocabulary, never drawn for the conversation) and the task's text after it. */
const INVOCATION = [7001, 7002, 7003];
const TASK_TAIL = [4242, 4243, 4244, 4245];
const SPEEDUP_GOAL = 20;

export interface AloraLengthResult {
  conversationTokens: number;
  /** Median time from the adapter change to the first generated token (the prefill of what is not cached, and one sample). */
  firstTokenMs: { alora: number; plain: number };
  /** plain / alora. */
  speedup: number;
  /** Tokens the backend evaluated for the switch's first token (its own count), median. */
  evaluatedTokens: { alora: number; plain: number };
  /** Process resident memory after the switch's first token minus before the switch, median bytes (both paths hold one context). */
  rssDeltaBytes: { alora: number; plain: number };
  /** KV states of the conversation the aLoRA switch keeps (the plain switch computes them again into the same cache). */
  keptKvBytes: number;
  runs: number;
}

export interface AloraSwitchResult {
  model: string;
  label: string;
  threads: number;
  contextSize: number;
  adapter: { rank: number; bytes: number; invocationTokens: number[] };
  /** Bytes of the session's context (KV cache and compute buffers), the same before and after either switch. */
  contextBytes: { beforeSwitch: number; afterAlora: number; afterPlain: number };
  /** Bytes of KV state per token (f16 K and V over every layer). */
  kvBytesPerToken: number;
  lengths: AloraLengthResult[];
  targets: { aloraSwitchSpeedup2000: { value: number; goal: number; met: boolean } };
}

const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);

/** The aLoRA adapter (rank 16, all seven projections) and a plain copy of the same tensors. */
function writeAdapters(dir: string): { alora: string; plain: string } {
  const plain = path.join(dir, "bench-100m-task-plain.gguf");
  const alora = path.join(dir, "bench-100m-task-alora.gguf");
  const opts = { shape: SHAPE_100M, rank: 16, seed: 21, taskName: "task" };
  if (!fs.existsSync(plain)) synthAdapter(plain, opts);
  if (!fs.existsSync(alora)) {
    const { kv, tensors } = synthAdapterSpec(opts);
    writeGguf(alora, { kv: [...kv, aloraInvocationKv(INVOCATION)], tensors });
  }
  return { alora, plain };
}

/** A conversation of `n` token ids (BOS, then ids drawn from the vocabulary, never the invocation's). */
function conversation(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const out = [1];
  while (out.length < n) out.push(10 + Math.floor(rng.next() * 6900));
  return out;
}

interface Sample {
  ms: number;
  evaluated: number;
  rssDelta: number;
}

/** The session holds `conv` computed by the base; then the switch to `set` and the first token of `prompt`. */
async function timedSwitch(s: Session, conv: number[], prompt: number[], set: Record<string, number>): Promise<Sample> {
  await s.setAdapters({});
  const warm = await s.complete(conv, { maxTokens: 1 });
  if (warm.adapterPath !== "base") throw new Error(`the conversation took the ${warm.adapterPath} path`);
  const evaluated = s.evaluatedTokens;
  const rss = process.memoryUsage().rss;
  const t = performance.now();
  await s.setAdapters(set);
  const r = await s.complete(prompt, { maxTokens: 1 });
  const ms = performance.now() - t;
  const expected = set.task ? "alora" : "plain";
  if (r.adapterPath !== expected) throw new Error(`the switch took the ${r.adapterPath} path, not ${expected}`);
  return { ms, evaluated: s.evaluatedTokens - evaluated, rssDelta: process.memoryUsage().rss - rss };
}

export async function runAloraSwitch(o: { dir: string; threads: number; runs: number; log: (s: string) => void }): Promise<AloraSwitchResult> {
  const model = generated100M(o.dir, o.log);
  const files = writeAdapters(o.dir);
  const contextSize = 2048;
  const rt = await Runtime.open({ model, gpu: false, threads: o.threads, contextSize, swap: "live" });
  try {
    const info = await rt.adapters.load("task", files.alora);
    await rt.adapters.load("plain", files.plain);
    const s = rt.session();
    await s.ready();
    const beforeSwitch = s.memoryBytes;
    // warm-up: one short switch each way
    const warm = conversation(64, 99);
    await timedSwitch(s, warm, [...warm, ...INVOCATION, ...TASK_TAIL], { task: 1 });
    await timedSwitch(s, warm, [...warm, ...INVOCATION, ...TASK_TAIL], { plain: 1 });
    let afterAlora = 0;
    let afterPlain = 0;
    const lengths: AloraLengthResult[] = [];
    for (const n of ALORA_LENGTHS) {
      const conv = conversation(n, n);
      const prompt = [...conv, ...INVOCATION, ...TASK_TAIL];
      const a: Sample[] = [];
      const p: Sample[] = [];
      // the two paths interleaved, so machine drift hits both alike
      for (let i = 0; i < o.runs; i++) {
        a.push(await timedSwitch(s, conv, prompt, { task: 1 }));
        afterAlora = s.memoryBytes;
        p.push(await timedSwitch(s, conv, prompt, { plain: 1 }));
        afterPlain = s.memoryBytes;
      }
      const alora = med(a.map((x) => x.ms));
      const plain = med(p.map((x) => x.ms));
      const r: AloraLengthResult = {
        conversationTokens: n,
        firstTokenMs: { alora, plain },
        speedup: plain / alora,
        evaluatedTokens: { alora: med(a.map((x) => x.evaluated)), plain: med(p.map((x) => x.evaluated)) },
        rssDeltaBytes: { alora: med(a.map((x) => x.rssDelta)), plain: med(p.map((x) => x.rssDelta)) },
        keptKvBytes: n * kvBytesPerToken(),
        runs: o.runs,
      };
      o.log(`  ${n} tokens: aLoRA ${alora.toFixed(1)} ms, plain ${plain.toFixed(1)} ms, ${r.speedup.toFixed(1)}x`);
      lengths.push(r);
    }
    const last = lengths[lengths.length - 1];
    return {
      model,
      label: "generated 100M Q4_0 (rank-16 adapter, 7 projections)",
      threads: rt.backend.threads,
      contextSize,
      adapter: { rank: 16, bytes: info.bytes, invocationTokens: INVOCATION },
      contextBytes: { beforeSwitch, afterAlora, afterPlain },
      kvBytesPerToken: kvBytesPerToken(),
      lengths,
      targets: { aloraSwitchSpeedup2000: { value: last.speedup, goal: SPEEDUP_GOAL, met: last.speedup >= SPEEDUP_GOAL } },
    };
  } finally {
    await rt.dispose();
  }
}

/** f16 K and V of every layer for one token of the 100M shape. */
function kvBytesPerToken(): number {
  const s = SHAPE_100M;
  return 2 * s.nLayer * (s.nEmbd / s.nHead) * s.nHeadKv * 2;
}

/** The human-readable report. */
export function formatAloraSwitch(r: AloraSwitchResult): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `${r.label}, context ${r.contextSize}, ${r.threads} threads: switch a conversation to a task adapter, time to first token`,
    ...r.lengths.map((l) =>
      `  ${String(l.conversationTokens).padStart(5)} tokens: aLoRA ${l.firstTokenMs.alora.toFixed(1)} ms (${l.evaluatedTokens.alora} tokens evaluated), ` +
        `plain LoRA ${l.firstTokenMs.plain.toFixed(1)} ms (${l.evaluatedTokens.plain}): ${l.speedup.toFixed(1)}x; KV kept ${mib(l.keptKvBytes)}`),
    `  memory: context ${mib(r.contextBytes.beforeSwitch)} before, ${mib(r.contextBytes.afterAlora)} after aLoRA, ${mib(r.contextBytes.afterPlain)} after plain; ` +
      `adapter ${mib(r.adapter.bytes)} (loaded once)`,
    `  target aloraSwitchSpeedup2000 ${r.targets.aloraSwitchSpeedup2000.value.toFixed(1)} (goal ${SPEEDUP_GOAL}): ${r.targets.aloraSwitchSpeedup2000.met ? "met" : "not met"}`,
  ];
  return lines.join("\n") + "\n";
}
