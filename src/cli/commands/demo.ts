// lora-edge demo (the default command): load, generate, swap, mix and unload on the embedded model; timing table.
import fs from "node:fs";
import { EXIT, UsageError } from "../command.js";
import { defineCommand } from "../spec.js";
import { RUNTIME_OPTIONS, runtimeOptions } from "../runtime-flags.js";
import { Runtime, demoAdapterPaths, type GenerationResult, type Session } from "../../runtime/index.js";
import { percentile } from "../../runtime/latency.js";

const PROMPT = "Once upon a time";
const LONG_PROMPT =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. " +
  "One day, she saw a big red ball under a tree.";

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
const ms = (x: number) => (x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(1) : x.toFixed(0));

/** Median prefill and decode rates of `runs` fresh (uncached) generations on a session. */
async function rates(s: Session, runs: number, tokens: number): Promise<{ prefill: number[]; decode: number[]; promptTokens: number }> {
  let promptTokens = 0;
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r: GenerationResult = await s.complete(LONG_PROMPT, { maxTokens: tokens, reuseCache: false });
    prefill.push(r.timings.prefillTokensPerSecond);
    decode.push(r.timings.decodeTokensPerSecond);
    promptTokens = r.promptTokens;
  }
  return { prefill, decode, promptTokens };
}

export default defineCommand({
  name: "demo",
  summary: "the demo (default): load, generate, swap adapters live, mix, unload, timing table [--json]",
  usage: ["[-m BASE.gguf] [--a ADAPTER.gguf] [--b ADAPTER.gguf] [--swaps N] [-n N] [--json]"],
  options: {
    model: RUNTIME_OPTIONS.model,
    a: { kind: "string", value: "FILE", help: "adapter A (default: the shipped demo adapter A)" },
    b: { kind: "string", value: "FILE", help: "adapter B (default: the shipped demo adapter B)" },
    gpu: RUNTIME_OPTIONS.gpu,
    threads: RUNTIME_OPTIONS.threads,
    swaps: { kind: "int", min: 1, default: 1000, help: "live swaps to time" },
    tokens: { kind: "int", short: "n", min: 1, default: 32, help: "tokens per generated text" },
    json: { kind: "flag", help: "print one JSON object" },
  },
}, async (values) => {
  const t0 = performance.now();
  const demo = demoAdapterPaths();
  const fileA = values.a ?? demo.a;
  const fileB = values.b ?? demo.b;
  for (const f of [fileA, fileB]) if (!fs.existsSync(f)) throw new UsageError(`demo adapter ${f} is missing`);
  const nSwaps = values.swaps;
  const nTokens = values.tokens;
  // The embedded 260K-parameter model runs fastest on one thread (its tensors are too small to split).
  const out = (s: string) => {
    if (!values.json) process.stdout.write(s);
  };

  const rt = await Runtime.open(runtimeOptions({ model: values.model, gpu: values.gpu, threads: values.threads, ctx: 512 }));
  for (const notice of rt.notices) process.stderr.write(`lora-edge: ${notice}\n`);
  try {
    const st0 = rt.stats();
    out(`lora-edge demo: ${st0.model}\n  backend ${st0.backend}/${st0.device}, ${st0.threads} thread(s), adapters swapped ${st0.swapMode}\n\n`);
    const a = await rt.adapters.load("A", fileA);
    const b = await rt.adapters.load("B", fileB);
    out(`loaded adapter A (${a.path}): rank ${a.ranks.join("/")}, ${a.targets.length} projections x ${a.layers.length} layers\n`);
    out(`loaded adapter B (${b.path}): rank ${b.ranks.join("/")}, ${b.targets.length} projections x ${b.layers.length} layers\n\n`);

    const s = rt.session();
    const texts: Record<string, string> = {};
    const show = async (label: string) => {
      const r = await s.complete(PROMPT, { maxTokens: nTokens });
      texts[label] = r.text;
      out(`${label.padEnd(22)} ${PROMPT}${r.text}\n`);
    };
    await show("base");
    await s.setAdapters({ A: 1 });
    await show("adapter A");
    await s.setAdapters({ B: 1 });
    await show("swap to B (live)");
    await s.setAdapters({ A: 0.5, B: 0.5 });
    await show("mix 0.5 A + 0.5 B");

    // Swap latency: alternate A and B on an idle session (each swap also clears the KV cache).
    const swapMs: number[] = [];
    for (let i = 0; i < nSwaps; i++) {
      const t = performance.now();
      await s.setAdapters(i % 2 ? { B: 1 } : { A: 1 });
      swapMs.push(performance.now() - t);
    }
    const sortedSwaps = [...swapMs].sort((x, y) => x - y);

    // Throughput, base and with adapter A, interleaved runs on two sessions.
    const baseS = rt.session();
    const adaptS = rt.session({ adapters: { A: 1 } });
    const base = { prefill: [] as number[], decode: [] as number[] };
    const adapted = { prefill: [] as number[], decode: [] as number[] };
    let promptTokens = 0;
    for (let i = 0; i < 3; i++) {
      const x = await rates(baseS, 1, 64);
      promptTokens = x.promptTokens;
      const y = await rates(adaptS, 1, 64);
      base.prefill.push(...x.prefill);
      base.decode.push(...x.decode);
      adapted.prefill.push(...y.prefill);
      adapted.decode.push(...y.decode);
    }

    await rt.adapters.unload("A");
    await show("unload A (keeps B)");
    const st = rt.stats();
    const total = performance.now() - t0;
    const table = {
      modelLoadMs: st.load.totalMs,
      adapterLoadMs: { A: a.checkMs + a.loadMs, B: b.checkMs + b.loadMs },
      swaps: nSwaps,
      swapP50Ms: percentile(sortedSwaps, 0.5),
      swapP99Ms: percentile(sortedSwaps, 0.99),
      prefillTokPerS: { base: median(base.prefill), adapterA: median(adapted.prefill) },
      decodeTokPerS: { base: median(base.decode), adapterA: median(adapted.decode) },
      rssMiB: st.memory.rss / 2 ** 20,
      totalMs: total,
    };
    if (values.json) {
      process.stdout.write(JSON.stringify({ model: st.model, backend: st.backend, device: st.device, threads: st.threads, texts, ...table }) + "\n");
      return EXIT.ok;
    }
    const rows: [string, string, string][] = [
      ["model load", `${ms(table.modelLoadMs)} ms`, `(llama.cpp init ${ms(st.load.backendInitMs)} ms + weights ${ms(st.load.modelLoadMs)} ms)`],
      ["adapter load (check + llama.cpp)", `A ${ms(table.adapterLoadMs.A)} ms`, `B ${ms(table.adapterLoadMs.B)} ms`],
      [`live swap A<->B, ${nSwaps} swaps`, `p50 ${ms(table.swapP50Ms)} ms`, `p99 ${ms(table.swapP99Ms)} ms`],
      [`prefill tok/s (${promptTokens}-token prompt)`, `base ${table.prefillTokPerS.base.toFixed(0)}`, `with A ${table.prefillTokPerS.adapterA.toFixed(0)}`],
      ["decode tok/s (64 tokens)", `base ${table.decodeTokPerS.base.toFixed(0)}`, `with A ${table.decodeTokPerS.adapterA.toFixed(0)}`],
      ["resident memory", `${table.rssMiB.toFixed(0)} MiB`, ""],
      ["whole demo", `${ms(total)} ms`, ""],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    out("\n");
    for (const [k, v1, v2] of rows) out(`  ${k.padEnd(w0)}  ${v1.padEnd(w1)}  ${v2}\n`);
    return EXIT.ok;
  } finally {
    await rt.dispose();
  }
});
