// Engine benchmark: prefill and decode tokens/s of the wasm engine against llama.cpp (CPU, same threads) and wllama, with and without rank-16 adapters, and a mixed-adapter load decoded together.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getLlama, type Llama } from "node-llama-cpp";
import { loadEngineModel, openCore } from "../src/backends/wasm.js";
import { EngineContext, EngineModel, type AdapterPrecision, type EngineAdapter } from "../src/backends/wasm/engine/index.js";
import { openGguf } from "../src/gguf/reader.js";
import { synthAdapter, synthModel, type ModelShape } from "../src/tools/synth.js";
import { nativeMixed, wasmMixed, wasmMixedProfile, type StepProfile } from "./mixed.js";
import { kernelProfile } from "./kernel-profile.js";
import { defaultBuildProblem, wllamaRun } from "./wllama-node.js";

/** About 97M parameters: 12 layers of n_embd 768 / n_ff 2048 and an 8000-token vocabulary. */
const SHAPE_100M: ModelShape = {
  id: "bench-100m", title: "generated 100M llama", architecture: "llama", nEmbd: 768, nLayer: 12, nHead: 12, nHeadKv: 12,
  nFf: 2048, nVocab: 8000, contextLength: 2048, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false,
};
/** stories260K's dimensions, for its rank-16 adapter. */
const SHAPE_STORIES: ModelShape = {
  id: "stories260k", title: "stories260K", architecture: "llama", nEmbd: 64, nLayer: 5, nHead: 8, nHeadKv: 4,
  nFf: 172, nVocab: 512, contextLength: 2048, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false,
};

interface Row {
  model: string;
  threads: number;
  prefillTokens: number;
  decodeTokens: number;
  wasmPrefillTps: number;
  /** The wasm engine's prefill one token at a time (its decode path), same run. */
  wasmPrefillTpsPerToken: number;
  wasmPrefillTpsLora: number;
  nativePrefillTps: number;
  wasmDecodeTps: number;
  nativeDecodeTps: number;
  /** wasm decode / native decode. */
  ratio: number;
  wasmDecodeTpsLora: number;
  nativeDecodeTpsLora: number;
  /** Extra time per decoded token with the rank-16 adapter, wasm engine, percent. */
  loraOverheadPct: number;
  nativeLoraOverheadPct: number;
  /** Share of the wasm decode time per stage, percent (with the adapter). */
  wasmProfilePct: Record<string, number>;
  /**
   * Per adapter precision (the first is the one above): decode tok/s, overhead (ratio of medians, as
   * loraOverheadPct), the median over runs of each run's own adapter/base ratio, the interleaved overhead
   * (the target's figure, see interleavedOverheads), the profile, and prefill tok/s.
   */
  wasmLora: Record<string, {
    decodeTps: number; overheadPct: number; pairedOverheadPct: number; interleavedOverheadPct: number;
    profilePct: Record<string, number>; prefillTps: number;
  }>;
  /** Q4_0 weights repacked into groups of four rows (--repack on, or both). */
  repacked: boolean;
  /** With --repack both: the same figures for the plain layout, measured interleaved in the same run. */
  plain?: { wasmDecodeTps: number; ratio: number; wasmPrefillTps: number; wasmDecodeTpsLora: number };
  /** wllama (compat build) on the same model and threads: its tokens/s and the wasm engine's over them. */
  wllama?: { prefillTps: number; decodeTps: number; promptTokens: number; decodeRatio: number; prefillRatio: number } | { skipped: string };
}

/** The mixed-adapter load: sequences on different rank-16 adapters, aggregate decode tokens/s. */
interface Mixed {
  model: string;
  threads: number;
  sequences: number;
  promptTokens: number;
  decodeTokensPerSequence: number;
  adapterPrecision: AdapterPrecision;
  /** wasm engine, all sequences in one forward pass per step. */
  wasmTogetherTps: number;
  /** wasm engine, each sequence decoded alone in turn. */
  wasmOneAtATimeTps: number;
  /** Median over rounds of each round's together / one-at-a-time. */
  speedup: number;
  /** llama.cpp serving the sequences one at a time (a context per adapter). */
  nativeOneAtATimeTps: number;
  /** wasm together / native one at a time. */
  ratioToNative: number;
  /**
   * Where the time goes, kernel by kernel (milliseconds; profiled runs after the timed rounds): one step of all
   * sequences together, and one token of a sequence decoded alone.
   */
  profile: { togetherStep: StepProfile; oneToken: StepProfile };
}

interface Target {
  value: number;
  goal: number;
  met: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function promptTokens(n: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3))));
}

/** One wasm run: prefill (in batches of `batchTokens`; 1: token by token) then greedy decode; returns tokens/s for both. */
function wasmRun(model: EngineModel, adapter: EngineAdapter | undefined, prompt: number[], decode: number, batchTokens = EngineModel.BATCH_TOKENS) {
  const ctx = new EngineContext(model, prompt.length + decode + 8, adapter ? [{ adapter, scale: 1 }] : []);
  ctx.batchTokens = batchTokens;
  try {
    const t0 = performance.now();
    ctx.evaluate(prompt);
    const t1 = performance.now();
    let next = model.argmax();
    const t2 = performance.now();
    for (let i = 0; i < decode; i++) {
      ctx.evaluate([next]);
      next = model.argmax();
    }
    const t3 = performance.now();
    return { prefill: prompt.length / ((t1 - t0) / 1000), decode: decode / ((t3 - t2) / 1000) };
  } finally {
    ctx.dispose();
  }
}

/**
 * Adapter overheads measured interleaved: one context per configuration (the base, then each adapter), all at
 * the same position, decode `chunk` tokens each in turn, the turn order rotating every round. Each round gives
 * every adapter's time over the base's from the same moment; the figure is the median over rounds, so drift of
 * the machine's speed during the run cancels instead of landing on one configuration.
 */
function interleavedOverheads(model: EngineModel, adapters: readonly EngineAdapter[], prompt: number[], rounds: number, chunk: number): number[] {
  const configs = [undefined, ...adapters];
  const ctxs = configs.map((a) => new EngineContext(model, prompt.length + rounds * chunk + 8, a ? [{ adapter: a, scale: 1 }] : []));
  try {
    const next = ctxs.map((c) => { c.evaluate(prompt); return model.argmax(); });
    const ratios: number[][] = adapters.map(() => []);
    for (let r = 0; r < rounds; r++) {
      const ms = new Array<number>(configs.length).fill(0);
      for (let j = 0; j < configs.length; j++) {
        const i = (j + r) % configs.length;
        const t0 = performance.now();
        for (let k = 0; k < chunk; k++) {
          ctxs[i].evaluate([next[i]]);
          next[i] = model.argmax();
        }
        ms[i] = performance.now() - t0;
      }
      adapters.forEach((_, a) => ratios[a].push(ms[a + 1] / ms[0]));
    }
    return ratios.map((x) => round((median(x) - 1) * 100));
  } finally {
    for (const c of ctxs) c.dispose();
  }
}

async function nativeRun(llama: Llama, modelPath: string, adapterPath: string | undefined, threads: number, prompt: number[], decode: number) {
  const model = await llama.loadModel({ modelPath });
  try {
    const ctx = await model.createContext({
      contextSize: Math.max(256, prompt.length + decode + 8), threads, batchSize: Math.max(prompt.length, 1),
      ...(adapterPath ? { lora: { adapters: [{ filePath: adapterPath, scale: 1 }] } } : {}),
    });
    try {
      const seq = ctx.getSequence();
      const out: { prefill: number; decode: number }[] = [];
      for (let run = 0; run < 2; run++) {
        await seq.clearHistory();
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(prompt as never);
        const t1 = performance.now();
        let n = 0;
        const t2 = performance.now();
        // the first token comes from evaluating the given one, each later one from evaluating the one before it
        for await (const _t of seq.evaluate([prompt[prompt.length - 1]] as never, { temperature: 0 })) {
          if (++n > decode) break;
        }
        const t3 = performance.now();
        out.push({ prefill: prompt.length / ((t1 - t0) / 1000), decode: (decode + 1) / ((t3 - t2) / 1000) });
      }
      return out[out.length - 1];
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      /** Comma-separated thread counts, e.g. 1,2 (default: all cores). */
      threads: { type: "string" },
      prompt: { type: "string", default: "64" },
      decode: { type: "string", default: "64" },
      runs: { type: "string", default: "3" },
      /** Rounds of the interleaved adapter-overhead measurement (8 decoded tokens per configuration per round). */
      "overhead-rounds": { type: "string", default: "21" },
      models: { type: "string", default: "stories260K,100m" },
      stories: { type: "string" },
      keep: { type: "string" },
      /** Comma-separated adapter precisions to time in the same run (f32, q8); the first is reported as loraOverheadPct. */
      "adapter-precisions": { type: "string", default: "f32,q8" },
      /** Q4_0 weights in groups of four rows: on (default), off, or both (the plain layout measured alongside). */
      repack: { type: "string", default: "on" },
      /** Sequences of the mixed-adapter load (each on its own rank-16 adapter), their prompt and decoded tokens; 0 sequences skips it. */
      "mixed-sequences": { type: "string", default: "4" },
      "mixed-prompt": { type: "string", default: "16" },
      "mixed-decode": { type: "string", default: "32" },
      /** wllama on the 100M model at 1 thread: on or off. */
      wllama: { type: "string", default: "on" },
      /**
       * Which parts run: "single" (one sequence: wasm, native, adapters, wllama), "mixed" (the mixed-adapter
       * load), or both (default). `--parts mixed --models 100m` times the mixed load alone, for quick iterations.
       */
      parts: { type: "string", default: "single,mixed" },
    },
  });
  // the targets are at 1 thread
  const threadList = values.threads ? values.threads.split(",").map(Number) : [1];
  const precisions = values["adapter-precisions"]!.split(",") as AdapterPrecision[];
  for (const p of precisions) if (!["f32", "q8"].includes(p)) throw new Error(`unknown adapter precision ${p} (f32, q8)`);
  const promptN = Number(values.prompt), decodeN = Number(values.decode), runs = Number(values.runs);
  const parts = new Set(values.parts!.split(","));
  for (const p of parts) if (!["single", "mixed"].includes(p)) throw new Error(`unknown part ${p} (single, mixed)`);
  const log = (s: string) => { if (!values.json) console.log(s); else process.stderr.write(s + "\n"); };
  const tmp = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-engine-"));
  fs.mkdirSync(tmp, { recursive: true });
  const storiesPath = values.stories ?? path.resolve("gguf", "stories260K.gguf");
  const cases: { name: string; model: string; adapter: string; mixedAdapters?: string[] }[] = [];
  /** One rank-16 adapter per mixed sequence (seeds 11, 12, ...; the first is the single-adapter one). */
  const mixedAdapters = (dir: string, n: number) =>
    Array.from({ length: n }, (_, k) => {
      const a = path.join(dir, k === 0 ? "bench-100m-r16.gguf" : `bench-100m-r16-s${11 + k}.gguf`);
      if (!fs.existsSync(a)) synthAdapter(a, { shape: SHAPE_100M, rank: 16, seed: 11 + k });
      return a;
    });
  const mixedRows: Mixed[] = [];
  const wllamaProblem = await defaultBuildProblem();
  if (wllamaProblem) log(`${wllamaProblem}; wllama runs its compat build (32-bit memory, Asyncify)`);
  for (const m of values.models!.split(",")) {
    if (m === "stories260K") {
      if (!fs.existsSync(storiesPath)) throw new Error(`stories260K not found at ${storiesPath} (pass --stories)`);
      const a = path.join(tmp, "stories260K-r16.gguf");
      if (!fs.existsSync(a)) synthAdapter(a, { shape: SHAPE_STORIES, rank: 16, seed: 5 });
      cases.push({ name: "stories260K F32", model: storiesPath, adapter: a });
    } else if (m === "100m") {
      const model = path.join(tmp, "bench-100m-Q4_0.gguf");
      if (!fs.existsSync(model)) {
        log("generating a 100M-parameter Q4_0 model ...");
        synthModel(model, { shape: SHAPE_100M, type: "Q4_0", seed: 1 });
      }
      const a = path.join(tmp, "bench-100m-r16.gguf");
      if (!fs.existsSync(a)) synthAdapter(a, { shape: SHAPE_100M, rank: 16, seed: 11 });
      cases.push({ name: "generated 100M Q4_0", model, adapter: a, mixedAdapters: mixedAdapters(tmp, Number(values["mixed-sequences"])) });
    } else throw new Error(`unknown model ${m} (stories260K, 100m)`);
  }

  const rows: Row[] = [];
  for (const threads of threadList) for (const c of cases) {
    const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, maxThreads: threads, logLevel: "error" as never });
    const { core, pool } = await openCore(threads);
    try {
      const mode = values.repack!;
      if (!["on", "off", "both"].includes(mode)) throw new Error(`--repack ${mode}: on, off or both`);
      const model = loadEngineModel(core, c.model, undefined, { repackQ4_0: mode !== "off" });
      const plainModel = mode === "both" ? loadEngineModel(core, c.model, undefined, { repackQ4_0: false }) : undefined;
      if (parts.has("single")) {
        const af = openGguf(c.adapter);
        const adapters = precisions.map((precision) => model.loadAdapter(af, { precision }));
        const plainAdapter = plainModel?.loadAdapter(af, { precision: precisions[0] });
        af.close();
        const prompt = promptTokens(promptN, model.config.nVocab);
        wasmRun(model, undefined, prompt.slice(0, 8), 8); // warm-up (compiles the optimizing tier)
        for (const a of adapters) wasmRun(model, a, prompt.slice(0, 8), 8);
        if (plainModel) wasmRun(plainModel, undefined, prompt.slice(0, 8), 8);
        const w: ReturnType<typeof wasmRun>[] = [], wl: (typeof w)[] = adapters.map(() => []), pw: typeof w = [], pwl: typeof w = [], wt: typeof w = [];
        const n: Awaited<ReturnType<typeof nativeRun>>[] = [], nl: typeof n = [];
        for (let r = 0; r < runs; r++) {
          // interleaved: the machine's speed drifts between runs; wasm runs back to back, so each run's
          // adapter timings can also be compared with its own base timing
          w.push(wasmRun(model, undefined, prompt, decodeN));
          adapters.forEach((a, i) => wl[i].push(wasmRun(model, a, prompt, decodeN)));
          if (plainModel) {
            pw.push(wasmRun(plainModel, undefined, prompt, decodeN));
            pwl.push(wasmRun(plainModel, plainAdapter, prompt, decodeN));
          }
          wt.push(wasmRun(model, undefined, prompt, 0, 1));
          n.push(await nativeRun(llama, c.model, undefined, threads, prompt, decodeN));
          nl.push(await nativeRun(llama, c.model, c.adapter, threads, prompt, decodeN));
        }
        const profileOf = (adapter: EngineAdapter) => {
          // share of the run per wasm kernel
          const { totalMs, ms } = kernelProfile(core, () => {
            const t0 = performance.now();
            wasmRun(model, adapter, prompt.slice(0, 8), decodeN);
            return performance.now() - t0;
          });
          const pct: Record<string, number> = {};
          for (const [k, v] of ms) pct[k] = round((100 * v) / totalMs);
          return pct;
        };
        const interleaved = interleavedOverheads(model, adapters, prompt.slice(0, 8), Number(values["overhead-rounds"]), 8);
        const wd = median(w.map((x) => x.decode)), nd = median(n.map((x) => x.decode));
        const wasmLora: Row["wasmLora"] = {};
        adapters.forEach((a, i) => {
          const tps = median(wl[i].map((x) => x.decode));
          const paired = median(wl[i].map((x, k) => w[k].decode / x.decode));
          wasmLora[precisions[i]] = {
            decodeTps: round(tps), overheadPct: round((wd / tps - 1) * 100), pairedOverheadPct: round((paired - 1) * 100),
            interleavedOverheadPct: interleaved[i], profilePct: profileOf(a),
            prefillTps: round(median(wl[i].map((x) => x.prefill))),
          };
        });
        const first = wasmLora[precisions[0]];
        const wasmProfilePct = first.profilePct;
        const ndl = median(nl.map((x) => x.decode));
        const row: Row = {
          model: c.name, threads: pool ? pool.threads : 1, prefillTokens: promptN, decodeTokens: decodeN,
          wasmPrefillTps: round(median(w.map((x) => x.prefill))), wasmPrefillTpsPerToken: round(median(wt.map((x) => x.prefill))),
          wasmPrefillTpsLora: round(median(wl[0].map((x) => x.prefill))), nativePrefillTps: round(median(n.map((x) => x.prefill))),
          wasmDecodeTps: round(wd), nativeDecodeTps: round(nd), ratio: round(wd / nd, 3),
          wasmDecodeTpsLora: first.decodeTps, nativeDecodeTpsLora: round(ndl),
          loraOverheadPct: first.overheadPct, nativeLoraOverheadPct: round((nd / ndl - 1) * 100),
          wasmProfilePct, wasmLora,
          repacked: mode !== "off",
        };
        if (plainModel) {
          const pd = median(pw.map((x) => x.decode));
          row.plain = {
            wasmDecodeTps: round(pd), ratio: round(pd / nd, 3), wasmPrefillTps: round(median(pw.map((x) => x.prefill))),
            wasmDecodeTpsLora: round(median(pwl.map((x) => x.decode))),
          };
        }
        if (values.wllama === "on" && c.mixedAdapters) {
          if (row.threads !== 1) row.wllama = { skipped: "wllama is measured at 1 thread (its compat package has no multi-thread build)" };
          else {
            const w1 = await wllamaRun(c.model, 1, "Once upon a time there was a little girl who lived in a village near the forest. ".repeat(Math.ceil(promptN / 16)), decodeN, runs);
            row.wllama = { ...mapRound(w1), decodeRatio: round(row.wasmDecodeTps / w1.decodeTps, 2), prefillRatio: round(row.wasmPrefillTps / w1.prefillTps, 2) };
            log(`  wllama (compat build): decode ${row.wllama.decodeTps} tok/s, prefill ${row.wllama.prefillTps} (${w1.promptTokens} tokens); wasm engine over wllama: decode ${row.wllama.decodeRatio}x, prefill ${row.wllama.prefillRatio}x`);
          }
        }
        rows.push(row);
        log(`${c.name}, ${row.threads} threads: decode wasm ${row.wasmDecodeTps} tok/s, native ${row.nativeDecodeTps} (ratio ${row.ratio}); ` +
          `prefill wasm ${row.wasmPrefillTps} (token by token ${row.wasmPrefillTpsPerToken}), native ${row.nativePrefillTps}; rank-16 adapter: wasm +${row.loraOverheadPct}%, native +${row.nativeLoraOverheadPct}%`);
        for (const [p, l] of Object.entries(wasmLora)) {
          log(`  adapter ${p}: prefill wasm ${l.prefillTps} tok/s; decode wasm ${l.decodeTps} tok/s, +${l.overheadPct}% (per-run pairs: +${l.pairedOverheadPct}%; interleaved: +${l.interleavedOverheadPct}%); decode time: ${Object.entries(l.profilePct).map(([k, v]) => `${k} ${v}%`).join(", ")}`);
        }
        if (row.plain) log(`  plain Q4_0 layout: decode wasm ${row.plain.wasmDecodeTps} tok/s (ratio ${row.plain.ratio}), prefill ${row.plain.wasmPrefillTps}, with adapter ${row.plain.wasmDecodeTpsLora}`);
      }
      if (parts.has("mixed") && c.mixedAdapters && c.mixedAdapters.length > 0) {
        const mp = Number(values["mixed-prompt"]), md = Number(values["mixed-decode"]);
        const precision = precisions[0];
        const ma = c.mixedAdapters.map((file) => {
          const f = openGguf(file);
          try {
            return model.loadAdapter(f, { precision });
          } finally {
            f.close();
          }
        });
        wasmMixed(model, ma, 8, 4); // warm-up
        const rounds: ReturnType<typeof wasmMixed>[] = [], nat: number[] = [];
        for (let r = 0; r < runs; r++) {
          rounds.push(wasmMixed(model, ma, mp, md));
          nat.push(await nativeMixed(llama, c.model, c.mixedAdapters, threads, mp, md, model.config.nVocab));
        }
        const tog = median(rounds.map((x) => x.together)), one = median(rounds.map((x) => x.oneAtATime)), nt = median(nat);
        const prof = wasmMixedProfile(core, model, ma, mp, md);
        const m: Mixed = {
          model: c.name, threads: pool ? pool.threads : 1, sequences: ma.length, promptTokens: mp, decodeTokensPerSequence: md, adapterPrecision: precision,
          wasmTogetherTps: round(tog), wasmOneAtATimeTps: round(one), speedup: round(median(rounds.map((x) => x.together / x.oneAtATime)), 2),
          nativeOneAtATimeTps: round(nt), ratioToNative: round(tog / nt, 2),
          profile: { togetherStep: prof.together, oneToken: prof.oneToken },
        };
        mixedRows.push(m);
        const fmt = (p: StepProfile) => `${p.totalMs} ms: ${Object.entries(p.ms).map(([k, v]) => `${k} ${v}`).join(", ")}`;
        log(`  mixed load profile (ms), one step together ${fmt(prof.together)}; one token alone ${fmt(prof.oneToken)}`);
        log(`  mixed load, ${m.sequences} sequences on ${m.sequences} rank-16 ${precision} adapters: together ${m.wasmTogetherTps} tok/s, one at a time ${m.wasmOneAtATimeTps} (speed-up ${m.speedup}x); llama.cpp one at a time ${m.nativeOneAtATimeTps} (wasm together / native ${m.ratioToNative})`);
      }
    } finally {
      pool?.dispose();
    }
  }
  const targets = targetsOf(rows, mixedRows);
  for (const [k, t] of Object.entries(targets)) log(`target ${k}: ${t.value} (goal ${k.endsWith("Pct") ? "<=" : ">="} ${t.goal}) ${t.met ? "met" : "NOT met"}`);
  if (values.json) console.log(JSON.stringify({ rows, mixed: mixedRows, ...(wllamaProblem ? { wllamaDefaultBuild: wllamaProblem } : {}), targets }, null, 2));
  if (!values.keep) fs.rmSync(tmp, { recursive: true, force: true });
}

const mapRound = (w: { prefillTps: number; decodeTps: number; promptTokens: number }) => ({ prefillTps: round(w.prefillTps), decodeTps: round(w.decodeTps), promptTokens: w.promptTokens });

/** The issue's targets from this run's figures (the 100M model at 1 thread); a target without its figure is absent. */
function targetsOf(rows: readonly Row[], mixed: readonly Mixed[]): Record<string, Target> {
  const t: Record<string, Target> = {};
  const at = (value: number, goal: number, atMost: boolean): Target => ({ value, goal, met: atMost ? value <= goal : value >= goal });
  const m = mixed.find((x) => x.threads === 1);
  if (m) t.mixedBatchSpeedup = at(m.speedup, 2, false);
  const r = rows.find((x) => x.threads === 1 && x.model.includes("100M"));
  if (r?.wllama && "decodeRatio" in r.wllama) t.wllamaDecodeRatio = at(r.wllama.decodeRatio, 6, false);
  // overheads from the interleaved rounds (base and adapters alternated token chunk by chunk, median of ratios)
  if (r?.wasmLora.f32) t.adapterOverheadF32Pct = at(r.wasmLora.f32.interleavedOverheadPct, 10, true);
  if (r?.wasmLora.q8) t.adapterOverheadQ8Pct = at(r.wasmLora.q8.interleavedOverheadPct, 5, true);
  return t;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
