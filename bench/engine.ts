// Engine benchmark: prefill and decode tokens/s of the wasm engine against llama.cpp (CPU, same threads), with and without a rank-16 adapter.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getLlama, type Llama } from "node-llama-cpp";
import { loadEngineModel, openCore } from "../src/backends/wasm.js";
import { EngineContext, EngineModel, type AdapterPrecision, type EngineAdapter } from "../src/backends/wasm/engine/index.js";
import { openGguf } from "../src/gguf/reader.js";
import { synthAdapter, synthModel, type ModelShape } from "../src/tools/synth.js";

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
   * loraOverheadPct), the median over runs of each run's own adapter/base ratio, the profile, and prefill tok/s.
   */
  wasmLora: Record<string, { decodeTps: number; overheadPct: number; pairedOverheadPct: number; profilePct: Record<string, number>; prefillTps: number }>;
  /** Q4_0 weights repacked into groups of four rows (--repack on, or both). */
  repacked: boolean;
  /** With --repack both: the same figures for the plain layout, measured interleaved in the same run. */
  plain?: { wasmDecodeTps: number; ratio: number; wasmPrefillTps: number; wasmDecodeTpsLora: number };
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
      models: { type: "string", default: "stories260K,100m" },
      stories: { type: "string" },
      keep: { type: "string" },
      /** Comma-separated adapter precisions to time in the same run (f32, q8); the first is reported as loraOverheadPct. */
      "adapter-precisions": { type: "string", default: "f32,q8" },
      /** Q4_0 weights in groups of four rows: on (default), off, or both (the plain layout measured alongside). */
      repack: { type: "string", default: "on" },
    },
  });
  const threadList = values.threads ? values.threads.split(",").map(Number) : [os.availableParallelism()];
  const precisions = values["adapter-precisions"]!.split(",") as AdapterPrecision[];
  for (const p of precisions) if (!["f32", "q8"].includes(p)) throw new Error(`unknown adapter precision ${p} (f32, q8)`);
  const promptN = Number(values.prompt), decodeN = Number(values.decode), runs = Number(values.runs);
  const log = (s: string) => { if (!values.json) console.log(s); else process.stderr.write(s + "\n"); };
  const tmp = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "lora-edge-engine-"));
  fs.mkdirSync(tmp, { recursive: true });
  const storiesPath = values.stories ?? path.resolve("gguf", "stories260K.gguf");
  const cases: { name: string; model: string; adapter: string }[] = [];
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
      cases.push({ name: "generated 100M Q4_0", model, adapter: a });
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
        // time per wasm kernel (the core times each call while profiling; nothing is timed otherwise)
        core.startProfile();
        const t0 = performance.now();
        wasmRun(model, adapter, prompt.slice(0, 8), decodeN);
        const total = performance.now() - t0;
        const prof = core.stopProfile();
        const pct: Record<string, number> = {};
        let known = 0;
        for (const [k, v] of [...prof].sort((x, y) => y[1] - x[1])) { pct[k] = round((100 * v) / total); known += v; }
        pct["outside kernels (JavaScript)"] = round((100 * (total - known)) / total);
        return pct;
      };
      const wd = median(w.map((x) => x.decode)), nd = median(n.map((x) => x.decode));
      const wasmLora: Row["wasmLora"] = {};
      adapters.forEach((a, i) => {
        const tps = median(wl[i].map((x) => x.decode));
        const paired = median(wl[i].map((x, k) => w[k].decode / x.decode));
        wasmLora[precisions[i]] = {
          decodeTps: round(tps), overheadPct: round((wd / tps - 1) * 100), pairedOverheadPct: round((paired - 1) * 100), profilePct: profileOf(a),
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
      rows.push(row);
      log(`${c.name}, ${row.threads} threads: decode wasm ${row.wasmDecodeTps} tok/s, native ${row.nativeDecodeTps} (ratio ${row.ratio}); ` +
        `prefill wasm ${row.wasmPrefillTps} (token by token ${row.wasmPrefillTpsPerToken}), native ${row.nativePrefillTps}; rank-16 adapter: wasm +${row.loraOverheadPct}%, native +${row.nativeLoraOverheadPct}%`);
      for (const [p, l] of Object.entries(wasmLora)) {
        log(`  adapter ${p}: prefill wasm ${l.prefillTps} tok/s; decode wasm ${l.decodeTps} tok/s, +${l.overheadPct}% (per-run pairs: +${l.pairedOverheadPct}%); decode time: ${Object.entries(l.profilePct).map(([k, v]) => `${k} ${v}%`).join(", ")}`);
      }
      if (row.plain) log(`  plain Q4_0 layout: decode wasm ${row.plain.wasmDecodeTps} tok/s (ratio ${row.plain.ratio}), prefill ${row.plain.wasmPrefillTps}, with adapter ${row.plain.wasmDecodeTpsLora}`);
    } finally {
      pool?.dispose();
    }
  }
  if (values.json) console.log(JSON.stringify(rows, null, 2));
  if (!values.keep) fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
