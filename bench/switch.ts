// Adapter switch benchmark: live swap vs new-context swap vs full model reload, on stories260K and a generated 100M Q4_0 model; --alora: task switches that keep the conversation.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Runtime, defaultModelPath, demoAdapterPaths, type Session } from "../src/runtime/index.js";
import { percentile } from "../src/runtime/latency.js";
import { synthAdapter } from "../src/tools/synth.js";
import { SHAPE_100M, generated100M, parameterCount } from "./models.js";
import { formatAloraSwitch, runAloraSwitch } from "./switch-alora.js";

interface Case {
  model: string;
  label: string;
  adapters: [string, string];
  contextSize: number;
  swaps: number;
  recreates: number;
  reloads: number;
}

interface Result {
  model: string;
  label: string;
  parameters?: number;
  contextSize: number;
  threads: number;
  liveSwapMs: { p50: number; p99: number; n: number };
  newContextMs: number;
  reloadMs: number;
  newContextOverLiveSwap: number;
  reloadOverLiveSwap: number;
  firstTokenAfterSwapMs: { live: number; newContext: number };
}

const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);

async function timeSwaps(s: Session, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await s.setAdapters(i % 2 ? { B: 1 } : { A: 1 });
    out.push(performance.now() - t);
  }
  return out;
}

/** Time to the first generated token right after a swap (includes the prompt's prefill). */
async function firstTokenAfterSwap(s: Session, runs: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await s.setAdapters(i % 2 ? { B: 1 } : { A: 1 });
    await s.complete("Once upon a time", { maxTokens: 1 });
    xs.push(performance.now() - t);
  }
  return med(xs);
}

async function runCase(c: Case, threads: number, log: (s: string) => void): Promise<Result> {
  const open = (swap: "live" | "recreate") => Runtime.open({ model: c.model, gpu: false, threads, contextSize: c.contextSize, swap });
  const live = await open("live");
  const recreate = await open("recreate");
  try {
    for (const rt of [live, recreate]) {
      await rt.adapters.load("A", c.adapters[0]);
      await rt.adapters.load("B", c.adapters[1]);
    }
    const ls = live.session({ adapters: { A: 1 } });
    const rs = recreate.session({ adapters: { A: 1 } });
    await ls.ready();
    await rs.ready();
    await timeSwaps(ls, 20); // warm-up
    // Interleave the two swap kinds in rounds so machine drift hits both alike.
    const liveMs: number[] = [];
    const recreateMs: number[] = [];
    const rounds = 5;
    for (let r = 0; r < rounds; r++) {
      liveMs.push(...(await timeSwaps(ls, Math.ceil(c.swaps / rounds))));
      recreateMs.push(...(await timeSwaps(rs, Math.ceil(c.recreates / rounds))));
    }
    const ftLive = await firstTokenAfterSwap(ls, 6);
    const ftNew = await firstTokenAfterSwap(rs, 6);
    log(`  ${c.label}: live swaps ${liveMs.length}, new-context swaps ${recreateMs.length}`);

    // Full reload: load the base again, load the adapter, create a context with it.
    const reloadMs: number[] = [];
    for (let i = 0; i < c.reloads; i++) {
      const t = performance.now();
      const rt = await open("live");
      await rt.adapters.load("B", c.adapters[1]);
      await rt.session({ adapters: { B: 1 } }).ready();
      reloadMs.push(performance.now() - t);
      await rt.dispose();
    }
    log(`  ${c.label}: reloads ${reloadMs.length}`);
    const sorted = [...liveMs].sort((a, b) => a - b);
    const p50 = percentile(sorted, 0.5);
    const newContextMs = med(recreateMs);
    const reload = med(reloadMs);
    return {
      model: c.model,
      label: c.label,
      contextSize: c.contextSize,
      threads,
      liveSwapMs: { p50, p99: percentile(sorted, 0.99), n: sorted.length },
      newContextMs,
      reloadMs: reload,
      newContextOverLiveSwap: newContextMs / p50,
      reloadOverLiveSwap: reload / p50,
      firstTokenAfterSwapMs: { live: ftLive, newContext: ftNew },
    };
  } finally {
    await live.dispose();
    await recreate.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== "--"),
    options: {
      json: { type: "boolean" },
      threads: { type: "string" },
      "skip-large": { type: "boolean" },
      keep: { type: "string" },
      alora: { type: "boolean" },
      runs: { type: "string" },
    },
  });
  const threads = values.threads ? Number(values.threads) : os.availableParallelism();
  const log = (s: string) => process.stderr.write(s + "\n");
  if (values.alora) {
    const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-switch-"));
    fs.mkdirSync(dir, { recursive: true });
    try {
      log(`aLoRA task switches on the generated 100M Q4_0 model (${threads} threads)`);
      const r = await runAloraSwitch({ dir, threads, runs: values.runs ? Number(values.runs) : 5, log });
      process.stdout.write(values.json ? JSON.stringify(r, null, 2) + "\n" : formatAloraSwitch(r));
    } finally {
      if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const demo = demoAdapterPaths();
  const cases: Case[] = [
    { model: defaultModelPath(), label: "stories260K F32", adapters: [demo.a, demo.b], contextSize: 2048, swaps: 1000, recreates: 100, reloads: 20 },
  ];
  let tmp: string | undefined;
  let params = 0;
  if (!values["skip-large"]) {
    tmp = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-switch-"));
    fs.mkdirSync(tmp, { recursive: true });
    const model = generated100M(tmp, log);
    params = parameterCount(model);
    const a = path.join(tmp, "bench-100m-lora-a.gguf");
    const b = path.join(tmp, "bench-100m-lora-b.gguf");
    if (!fs.existsSync(a)) synthAdapter(a, { shape: SHAPE_100M, rank: 16, seed: 11 });
    if (!fs.existsSync(b)) synthAdapter(b, { shape: SHAPE_100M, rank: 16, seed: 12 });
    cases.push({ model, label: "generated 100M Q4_0 (rank-16 adapters, 7 projections)", adapters: [a, b], contextSize: 2048, swaps: 1000, recreates: 20, reloads: 5 });
  }
  const results: Result[] = [];
  try {
    for (const c of cases) {
      log(`benchmarking ${c.label} (${threads} threads)`);
      const r = await runCase(c, threads, log);
      if (c.label.startsWith("generated") && params) r.parameters = params;
      results.push(r);
    }
  } finally {
    if (tmp && !values.keep) fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + "\n");
    return;
  }
  const f = (x: number) => (x < 1 ? x.toFixed(4) : x.toFixed(1));
  for (const r of results) {
    process.stdout.write(
      `${r.label} (context ${r.contextSize}, ${r.threads} threads)\n` +
        `  live swap            p50 ${f(r.liveSwapMs.p50)} ms   p99 ${f(r.liveSwapMs.p99)} ms   (n ${r.liveSwapMs.n})\n` +
        `  new-context swap     median ${f(r.newContextMs)} ms   ${r.newContextOverLiveSwap.toFixed(0)}x the live swap\n` +
        `  full reload          median ${f(r.reloadMs)} ms   ${r.reloadOverLiveSwap.toFixed(0)}x the live swap\n` +
        `  first token after swap (incl. 5-token prefill): live ${f(r.firstTokenAfterSwapMs.live)} ms, new context ${f(r.firstTokenAfterSwapMs.newContext)} ms\n`,
    );
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
