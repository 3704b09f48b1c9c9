// Browser benchmark: decode and prefill tok/s of lora-edge/web and of wllama in the same headless Chromium, at 1 thread and all, plus swap time and time to interactive.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import type { Browser, Page } from "puppeteer-core";
import { startPageServer, type PageServer } from "../src/serve/page-server.js";
import { findChromium, launchChromium } from "./chromium.js";
import { generated100M } from "./models.js";

interface Figures {
  engine: "lora-edge" | "wllama";
  model: string;
  threads: number;
  /** What the engine reported running on (lora-edge: its threads mode; wllama: multithread or not). */
  mode: string;
  decodeTps: number;
  prefillTps: number;
  decodeTpsRuns: number[];
  prefillTpsRuns: number[];
  generated: number[];
  promptTokens: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function inPage<T>(page: Page, body: string): Promise<T> {
  return page.evaluate(`(async () => { ${body} })()`) as Promise<T>;
}

/** lora-edge/web in the page: `runs` greedy generations of `tokens` after a warm-up, prompt evaluated afresh each time. */
async function loraEdge(page: Page, model: string, label: string, threads: number, prompt: string, tokens: number, runs: number): Promise<Figures> {
  const r = await inPage<{ mode: string; threads: number; runs: { prefill: number; decode: number; generated: number; promptTokens: number }[] }>(page, `
    const web = await import("/lora-edge.js");
    const rt = await web.Runtime.open({ model: ${JSON.stringify(model)}, threads: ${threads}, contextSize: 512 });
    const s = rt.session();
    await s.complete("Once", { maxTokens: 4 });
    const runs = [];
    for (let i = 0; i < ${runs}; i++) {
      const r = await s.complete(${JSON.stringify(prompt)}, { maxTokens: ${tokens}, temperature: 0, reuseCache: false });
      runs.push({ prefill: r.timings.prefillTokensPerSecond, decode: r.timings.decodeTokensPerSecond, generated: r.generatedTokens, promptTokens: r.promptTokens });
    }
    const st = await rt.stats();
    await rt.dispose();
    return { mode: st.threadsMode, threads: st.threads, runs };
  `);
  return figures("lora-edge", label, r.threads, r.mode, r.runs);
}

/** wllama (llama.cpp in wasm) in the same page and browser, same model and prompt, its own timings. */
async function wllama(page: Page, model: string, label: string, threads: number, prompt: string, tokens: number, runs: number): Promise<Figures> {
  const r = await inPage<{ mode: string; runs: { prefill: number; decode: number; generated: number; promptTokens: number }[] }>(page, `
    const { Wllama } = await import("/wllama/index.js");
    const w = new Wllama({ default: "/wllama/wasm/wllama.wasm" }, { suppressNativeLog: true, logger: { debug() {}, log() {}, info() {}, warn() {}, error: console.error } });
    w.setCompat(null);
    const blob = await (await fetch(${JSON.stringify(model)})).blob();
    await w.loadModel([blob], { n_threads: ${threads}, n_ctx: 512, n_gpu_layers: 0 });
    await w.createCompletion({ prompt: "Once", max_tokens: 4, temperature: 0 });
    const runs = [];
    for (let i = 0; i < ${runs}; i++) {
      const r = await w.createCompletion({ prompt: ${JSON.stringify(prompt)}, max_tokens: ${tokens}, temperature: 0, cache_prompt: false });
      runs.push({ prefill: r.timings.prompt_per_second, decode: r.timings.predicted_per_second, generated: r.timings.predicted_n, promptTokens: r.timings.prompt_n });
    }
    const mode = w.isMultithread() ? "multithread" : "single";
    await w.exit();
    return { mode, runs };
  `);
  return figures("wllama", label, threads, r.mode, r.runs);
}

function figures(engine: Figures["engine"], model: string, threads: number, mode: string, runs: { prefill: number; decode: number; generated: number; promptTokens: number }[]): Figures {
  return {
    engine, model, threads, mode,
    decodeTps: round(median(runs.map((r) => r.decode)), 1),
    prefillTps: round(median(runs.map((r) => r.prefill)), 1),
    decodeTpsRuns: runs.map((r) => round(r.decode, 1)),
    prefillTpsRuns: runs.map((r) => round(r.prefill, 1)),
    generated: runs.map((r) => r.generated),
    promptTokens: runs[0]?.promptTokens ?? 0,
  };
}

/** Live swaps on stories260K with the demo adapters while a generation runs: the engine's time per swap, and the page's round trip when idle. */
async function swaps(page: Page, threads: number, count: number): Promise<{ liveP50Ms: number; liveP99Ms: number; live: number; idleRoundTripP50Ms: number; adapterChanges: number }> {
  return inPage(page, `
    const web = await import("/lora-edge.js");
    const rt = await web.Runtime.open({ model: "/gguf/stories260K.gguf", threads: ${threads}, contextSize: 512 });
    await rt.adapters.load("A", "/gguf/stories260K-demo-a.gguf");
    await rt.adapters.load("B", "/gguf/stories260K-demo-b.gguf");
    const s = rt.session({ adapters: { A: 1 } });
    const sets = [{ B: 1 }, { A: 0.5, B: 0.5 }, { A: 1 }, { A: 0.25, B: 1.5 }];
    const g = s.generate("Once upon a time", { maxTokens: 400, temperature: 0 });
    let n = 0, i = 0;
    for await (const piece of g) if (++n % 4 === 0 && i < ${count}) await s.setAdapters(sets[i++ % sets.length]);
    const res = await g.result;
    const live = (await rt.stats()).swaps;
    const trips = [];
    for (let k = 0; k < ${count}; k++) {
      const t = performance.now();
      await s.setAdapters(sets[k % sets.length]);
      trips.push(performance.now() - t);
    }
    trips.sort((a, b) => a - b);
    await rt.dispose();
    return { liveP50Ms: live.p50Ms, liveP99Ms: live.p99Ms, live: live.live, idleRoundTripP50Ms: trips[trips.length >> 1], adapterChanges: res.adapterChanges };
  `);
}

/** Opens the demo in a fresh page `times` times: ms from navigation start until it can generate with stories260K and both adapters. */
async function interactive(browser: Browser, server: PageServer, times: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction("window.demo && (window.demo.state.ready || window.demo.state.error)", { timeout: 60_000 });
    const state = (await page.evaluate("window.demo.state")) as { ready: boolean; error: string; openedMs: number };
    if (!state.ready) throw new Error(`the demo did not open: ${state.error}`);
    out.push(state.openedMs);
    await page.close();
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== "--"),
    options: {
      json: { type: "boolean" },
      tokens: { type: "string", default: "64" },
      runs: { type: "string", default: "3" },
      swaps: { type: "string", default: "40" },
      "skip-large": { type: "boolean" },
      keep: { type: "string" },
    },
  });
  const log = (s: string) => process.stderr.write(s + "\n");
  const chromium = findChromium();
  if ("reason" in chromium) throw new Error(`bench:web needs Chromium: ${chromium.reason}`);
  const tokens = Number(values.tokens);
  const runs = Number(values.runs);
  // a prompt of about 100 tokens, so prefill figures mean something too
  const prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. ".repeat(4);

  let tmp: string | undefined;
  const models: { label: string; url: string }[] = [{ label: "stories260K F32", url: "/gguf/stories260K.gguf" }];
  const folders: Record<string, string> = { "/wllama/": path.join(path.dirname(createRequire(import.meta.url).resolve("@wllama/wllama")), "") };
  if (!values["skip-large"]) {
    tmp = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-web-"));
    fs.mkdirSync(tmp, { recursive: true });
    const file = generated100M(tmp, log);
    folders["/models/"] = tmp;
    models.push({ label: "generated 100M Q4_0", url: `/models/${path.basename(file)}` });
  }
  const server = await startPageServer({ folders });
  const browser = await launchChromium(chromium.path);
  const started = performance.now();
  const all = Math.max(1, (await (await browser.newPage()).evaluate("navigator.hardwareConcurrency")) as number);
  const results: Figures[] = [];
  let swap: Awaited<ReturnType<typeof swaps>>;
  let opened: number[];
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}index.html?model=`); // the demo's folder and headers; it opens nothing with an empty model
    for (const m of models) {
      for (const threads of [...new Set([1, all])]) {
        log(`${m.label}, ${threads} thread(s): lora-edge/web, ${runs} runs of ${tokens} tokens`);
        results.push(await loraEdge(page, m.url, m.label, threads, prompt, tokens, runs));
        log(`${m.label}, ${threads} thread(s): wllama`);
        results.push(await wllama(page, m.url, m.label, threads, prompt, tokens, runs));
      }
    }
    log(`live swaps during a generation (stories260K, demo adapters, ${all} threads)`);
    swap = await swaps(page, all, Number(values.swaps));
    log("time to interactive of the demo page");
    opened = await interactive(browser, server, 3);
  } finally {
    await browser.close();
    await server.close();
    if (tmp && !values.keep) fs.rmSync(tmp, { recursive: true, force: true });
  }

  const find = (engine: string, model: string, threads: number) => results.find((r) => r.engine === engine && r.model === model && r.threads === threads);
  const large = models[models.length - 1].label;
  const ours1 = find("lora-edge", large, 1), theirs1 = find("wllama", large, 1);
  const ratios = models.flatMap((m) => [...new Set([1, all])].map((t) => {
    const a = find("lora-edge", m.label, t)!, b = find("wllama", m.label, t)!;
    return { model: m.label, threads: t, decodeOverWllama: round(a.decodeTps / b.decodeTps), prefillOverWllama: round(a.prefillTps / b.prefillTps) };
  }));
  const decodeRatio = round(ours1!.decodeTps / theirs1!.decodeTps);
  const openedMs = round(median(opened), 1);
  const targets = {
    [`decode tok/s over wllama's at 1 thread, ${large}`]: { value: decodeRatio, goal: 3, met: decodeRatio >= 3 },
    "live adapter swap in the page, ms (median, engine side, during a generation)": { value: round(swap.liveP50Ms, 4), goal: 1, met: swap.liveP50Ms <= 1 },
    "demo page interactive with stories260K, ms from opening (median of 3)": { value: openedMs, goal: 2000, met: openedMs <= 2000 },
  };
  const machine = { cpu: os.cpus()[0]?.model ?? "?", browserThreads: all, loadAverageAtStart: os.loadavg()[0], seconds: Math.round((performance.now() - started) / 1000) };
  if (values.json) {
    process.stdout.write(JSON.stringify({ machine, tokens, runs, results, ratios, swaps: swap, interactiveMs: opened.map((x) => round(x, 1)), targets }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`${machine.cpu}; Chromium with ${all} hardware threads\n\n  model                  engine      threads  decode tok/s  prefill tok/s\n`);
  for (const r of results) {
    process.stdout.write(`  ${r.model.padEnd(22)} ${r.engine.padEnd(11)} ${String(r.threads).padStart(7)}  ${r.decodeTps.toFixed(1).padStart(12)}  ${r.prefillTps.toFixed(1).padStart(13)}\n`);
  }
  process.stdout.write(`\nlive swap: median ${swap.liveP50Ms.toFixed(3)} ms in the engine (${swap.live} swaps), idle round trip from the page ${swap.idleRoundTripP50Ms.toFixed(3)} ms\n`);
  process.stdout.write(`demo interactive: ${opened.map((x) => x.toFixed(0)).join(", ")} ms\n\n`);
  for (const [k, t] of Object.entries(targets)) process.stdout.write(`${t.met ? "met    " : "NOT met"} ${k}: ${t.value} (goal ${k.startsWith("decode") ? ">=" : "<="} ${t.goal})\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
