// Kernel benchmark: GEMV GB/s and GFLOP/s per variant against the measured memory read ceiling, LoRA overhead, merge time.
import { parseArgs } from "node:util";
import os from "node:os";
import { GgmlType, ggmlTypeById, GgmlTypeTraits } from "../src/gguf/ggml-types.js";
import { loadCore, createPool, relaxedSimdProblem, KERNELS, Core, Matrix, KernelPool } from "../src/core/index.js";
import { gemvQ4_0Plain } from "../src/core/reference/gemv.js";
import { mergeRef } from "../src/core/reference/lowrank.js";
import { Rng } from "../src/random.js";

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "9" },
    "ws-mib": { type: "string", default: "384" },
    "sample-ms": { type: "string", default: "100" },
    types: { type: "string", default: "Q4_0,Q4_1,Q8_0,Q4_K,Q6_K,F16" },
    shapes: { type: "string", default: "4096x4096,11008x4096" },
  },
});
const ROUNDS = Number(args.rounds);
const WS = Number(args["ws-mib"]) * 2 ** 20;
const SAMPLE_MS = Number(args["sample-ms"]);
/** Weight bytes of the cache-resident (L2-sized) matrix used to tell compute-bound from memory-bound. */
const HOT_BYTES = 384 * 1024;
const log = (s: string) => {
  if (!args.json) console.log(s);
  else process.stderr.write(s + "\n");
};

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Seeded bytes that are valid blocks of a type: random payload, finite moderate f16 scales. */
function weights(t: GgmlTypeTraits, rows: number, cols: number, seed: number): Uint8Array {
  const n = (rows * cols / t.blockSize) * t.typeSize;
  const b = new Uint8Array(n);
  new Rng(seed).fill(b);
  const u32 = new Uint32Array(b.buffer, 0, n >> 2);
  if (t.id === GgmlType.F32) {
    const f = new Float32Array(b.buffer);
    for (let i = 0; i < f.length; i++) f[i] = ((u32[i] >>> 8) / 16777216 - 0.5) * 0.1;
    return b;
  }
  if (t.id === GgmlType.F16) {
    for (let i = 1; i < n; i += 2) b[i] = (b[i] & 0x83) | 0x24;
    return b;
  }
  const fields: Record<string, number[]> = { Q4_0: [0], Q4_1: [0, 2], Q8_0: [0], Q4_K: [0, 2], Q6_K: [208] };
  for (let o = 0; o < n; o += t.typeSize) for (const f of fields[t.name] ?? []) b[o + f + 1] = 0x20 + (b[o + f + 1] & 7);
  return b;
}

/** Copies of one matrix filling the working set, so that successive calls read from memory, not cache. */
function copies(core: Core, t: GgmlTypeTraits, bytes: Uint8Array, rows: number, cols: number): Matrix[] {
  const n = Math.max(2, Math.min(64, Math.floor(WS / bytes.byteLength)));
  return Array.from({ length: n }, () => core.upload(t.id, bytes, rows, cols));
}

interface Variant {
  name: string;
  threads: number;
  /** Runs one call on copy i; returns nothing. */
  call: (i: number) => void;
  ncopies: number;
  samples: number[];
  /** Bytes read per call, for GB/s. */
  bytes: number;
  flops: number;
  type: string;
  rows: number;
  cols: number;
  ceiling: "oneThread" | "allThreads";
  /** Repeats on cache-resident data instead of rotating copies. */
  hot?: boolean;
}

/**
 * One timed sample: calls on successive copies until SAMPLE_MS passed (never reusing a copy, so weights
 * come from memory); a `hot` variant first makes one untimed call and then repeats on its cached data.
 */
function sample(v: Variant, start: { i: number }): number {
  if (v.hot) v.call(0);
  const t0 = performance.now();
  let calls = 0;
  let t = t0;
  do {
    v.call(start.i++ % v.ncopies);
    calls++;
    t = performance.now();
  } while (t - t0 < SAMPLE_MS && (v.hot || calls < v.ncopies));
  return (t - t0) / calls;
}

/** Warm-up, then rounds in which every variant runs once, in rotating order. Medians in ms per call. */
function runInterleaved(vs: Variant[]): void {
  const pos = vs.map(() => ({ i: 0 }));
  vs.forEach((v, k) => sample(v, pos[k]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < vs.length; j++) {
      const k = (j + r) % vs.length;
      vs[k].samples.push(sample(vs[k], pos[k]));
    }
  }
}

async function main() {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const threads = os.availableParallelism();
  const simd = await loadCore({ build: "simd", maxBytes: 2 ** 31 });
  const best = await loadCore({ maxBytes: 2 ** 31 });
  const relaxedProblem = await relaxedSimdProblem();
  const pool: KernelPool = await createPool({ threads, maxBytes: 2 ** 31 });
  log(`lora-edge kernel benchmark: ${os.cpus()[0]?.model ?? "cpu"}, ${threads} threads, node ${process.version}`);
  log(`relaxed SIMD: ${best.build === "relaxed" ? "in use" : `not used (${relaxedProblem})`}; pool build ${pool.core.build}`);

  // ---- memory read ceiling, same working-set size as the GEMV copies ----
  const ceilBytes = Math.floor(WS / 64) * 64;
  const cp = simd.arena.alloc(ceilBytes);
  simd.arena.u8(cp, ceilBytes).fill(1);
  const pp = pool.core.arena.alloc(ceilBytes);
  pool.core.arena.u8(pp, ceilBytes).fill(1);
  const per = Math.floor(ceilBytes / threads / 64) * 64;
  const ceilVariants: Variant[] = [
    mk("read", "ceiling", 1, 1, ceilBytes, 0, 0, 0, "oneThread", () => simd.call("read_probe", cp, ceilBytes)),
    mk("read", "ceiling", threads, 1, per * threads, 0, 0, 0, "allThreads", () =>
      pool.run(Array.from({ length: threads }, (_, t) => [{ fn: "read_probe", args: [pp + t * per, per] }])),
    ),
  ];
  runInterleaved(ceilVariants);
  const ceiling = {
    oneThread: ceilBytes / median(ceilVariants[0].samples) / 1e6,
    allThreads: (per * threads) / median(ceilVariants[1].samples) / 1e6,
  };
  simd.arena.release(cp);
  pool.core.arena.release(pp);
  log(`memory read ceiling (${(ceilBytes / 2 ** 20).toFixed(0)} MiB buffer): 1 thread ${ceiling.oneThread.toFixed(2)} GB/s, ${threads} threads ${ceiling.allThreads.toFixed(2)} GB/s`);

  // ---- GEMV ----
  const results: Record<string, unknown>[] = [];
  const bounds: Record<string, unknown>[] = [];
  const shapes = args.shapes.split(",").map((s) => s.split("x").map(Number) as [number, number]);
  const types = args.types.split(",").map((n) => ggmlTypeById(GgmlType[n as keyof typeof GgmlType])!);
  for (const [rows, cols] of shapes) {
    const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i * 0.37));
    for (const t of types) {
      const k = KERNELS.get(t.id)!;
      const bytes = weights(t, rows, cols, rows + t.id);
      const vs: Variant[] = [];
      const x8 = k.int8 !== undefined;
      const mode = x8 ? "x8" : "f32x";
      const sc = copies(simd, t, bytes, rows, cols);
      const bc = best.build === "relaxed" ? copies(best, t, bytes, rows, cols) : [];
      const pc = copies(pool.core, t, bytes, rows, cols);
      const flops = 2 * rows * cols;
      const add = (name: string, th: number, n: number, call: (i: number) => void, ceil: Variant["ceiling"] = "oneThread") =>
        vs.push(mk(t.name, name, th, n, bytes.byteLength, flops, rows, cols, ceil, call));
      if (t.id === GgmlType.Q4_0) {
        const plainCopies = [bytes, bytes.slice(), bytes.slice(), bytes.slice()];
        const y = new Float32Array(rows);
        add("ts-scalar", 1, plainCopies.length, (i) => gemvQ4_0Plain(plainCopies[i], x, rows, cols, y));
        const xp = simd.arena.put(x), yp = simd.arena.alloc(rows * 4);
        add("wasm-scalar", 1, sc.length, (i) => simd.call("gemv_q4_0_f32_scalar", sc[i].ptr, xp, yp, rows, cols));
        add("simd-f32x", 1, sc.length, (i) => simd.gemv(sc[i], x, { x8: false }));
      }
      add(`simd-${mode}`, 1, sc.length, (i) => simd.gemv(sc[i], x));
      if (bc.length && x8) add(`relaxed-${mode}`, 1, bc.length, (i) => best.gemv(bc[i], x));
      add(`threads-${mode}`, threads, pc.length, (i) => pool.core.gemv(pc[i], x), "allThreads");
      // the same kernel on a cache-resident slice: near the cold speed means compute-bound
      const useRelaxed = vs.some((v) => v.name === `relaxed-${mode}`);
      const single = useRelaxed ? best : simd;
      const hotRows = Math.min(rows, Math.max(1, Math.floor(HOT_BYTES / (bytes.byteLength / rows))));
      const hot = single.upload(t.id, bytes.subarray(0, hotRows * (bytes.byteLength / rows)), hotRows, cols);
      const hotV = mk(t.name, "hot", 1, 1, hot.rows * hot.rowBytes, 2 * hotRows * cols, hotRows, cols, "oneThread", () => single.gemv(hot, x));
      hotV.hot = true;
      vs.push(hotV);
      runInterleaved(vs);
      vs.pop();
      single.free(hot);
      const coldV = vs.find((v) => v.name === `${useRelaxed ? "relaxed" : "simd"}-${mode}`)!;
      const coldGBs = coldV.bytes / median(coldV.samples) / 1e6, hotGBs = hotV.bytes / median(hotV.samples) / 1e6;
      bounds.push({
        type: t.name, rows, cols, variant: coldV.name, coldGBs: round(coldGBs, 2), hotGBs: round(hotGBs, 2),
        boundBy: hotGBs < 1.3 * coldGBs ? "compute" : "memory",
      });
      for (const v of vs) {
        const ms = median(v.samples);
        const GBs = v.bytes / ms / 1e6;
        const row = {
          type: v.type, rows, cols, variant: v.name, threads: v.threads, ms: round(ms, 3), GBs: round(GBs, 2),
          GFLOPs: round(v.flops / ms / 1e6, 2), pctOfCeiling: round((100 * GBs) / ceiling[v.ceiling], 1),
        };
        results.push(row);
        log(`${pad(t.name, 5)} ${pad(`${rows}x${cols}`, 10)} ${pad(v.name, 14)} ${pad(String(v.threads), 2)}t ${pad(row.ms.toFixed(2), 8)} ms ${pad(row.GBs.toFixed(2), 6)} GB/s ${pad(row.GFLOPs.toFixed(2), 6)} GFLOP/s ${pad(row.pctOfCeiling.toFixed(0), 4)}% of ${v.ceiling} ceiling`);
      }
      for (const m of sc) simd.free(m);
      for (const m of bc) best.free(m);
      for (const m of pc) pool.core.free(m);
    }
  }

  for (const b of bounds) {
    log(`bound: ${pad(String(b.type), 5)} ${pad(`${b.rows}x${b.cols}`, 10)} ${pad(String(b.variant), 12)} cold ${b.coldGBs} GB/s, cache-resident ${b.hotGBs} GB/s -> ${b.boundBy}-bound`);
  }

  // ---- fused LoRA overhead on Q4_0 4096x4096 ----
  const lora = await loraOverhead(best, pool);
  log(`fused LoRA overhead, Q4_0 4096x4096 (${best.build}, 1 thread): r8 ${lora.one.r8}%, r16 ${lora.one.r16}%, r64 ${lora.one.r64}%`);
  log(`fused LoRA overhead, Q4_0 4096x4096 (${pool.core.build}, ${threads} threads): r8 ${lora.all.r8}%, r16 ${lora.all.r16}%, r64 ${lora.all.r64}%`);

  // ---- merge W += s B A, rank 16, 4096x4096 f32 ----
  const merge = mergeBench(simd);
  log(`merge W += s B A (4096x4096, rank 16): wasm SIMD ${merge.wasmMs} ms, plain TypeScript ${merge.tsMs} ms (${merge.speedup}x)`);

  const q = (v: string, r = 4096) => results.find((x) => x.type === "Q4_0" && x.variant === v && x.rows === r) as { GBs: number } | undefined;
  const summary = {
    simdOverTs4096: q("simd-x8") && q("ts-scalar") ? round(q("simd-x8")!.GBs / q("ts-scalar")!.GBs, 1) : null,
    bestSingleOverTs4096: q(best.build === "relaxed" ? "relaxed-x8" : "simd-x8") && q("ts-scalar")
      ? round(q(best.build === "relaxed" ? "relaxed-x8" : "simd-x8")!.GBs / q("ts-scalar")!.GBs, 1) : null,
  };
  const out = {
    machine: { cpu: os.cpus()[0]?.model, threads, node: process.version },
    settings: { rounds: ROUNDS, workingSetMiB: WS / 2 ** 20, sampleMs: SAMPLE_MS },
    relaxedSimd: { used: best.build === "relaxed", problem: relaxedProblem ?? null },
    ceilingGBs: { oneThread: round(ceiling.oneThread, 2), allThreads: round(ceiling.allThreads, 2) },
    gemv: results,
    bounds,
    loraOverheadPct: lora.one,
    loraOverheadPctThreads: lora.all,
    merge,
    summary,
    seconds: round((performance.now() - t0) / 1000, 1),
    /** Process CPU time over wall time: near 1 means the other cores were busy elsewhere (threads cannot help). */
    cpuPerWall: round((process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000 / (performance.now() - t0), 2),
  };
  pool.dispose();
  if (args.json) console.log(JSON.stringify(out));
  else log(`total ${out.seconds} s, process CPU time / wall time ${out.cpuPerWall}`);
}

function mk(type: string, name: string, threads: number, ncopies: number, bytes: number, flops: number, rows: number, cols: number,
  ceiling: Variant["ceiling"], call: (i: number) => void): Variant {
  return { name, threads, call, ncopies, samples: [], bytes, flops, type, rows, cols, ceiling };
}

async function loraOverhead(best: Core, pool: KernelPool) {
  const rows = 4096, cols = 4096;
  const t = ggmlTypeById(GgmlType.Q4_0)!;
  const bytes = weights(t, rows, cols, 99);
  const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i));
  const res: { one: Record<string, number>; all: Record<string, number> } = { one: {}, all: {} };
  for (const [key, core] of [["one", best], ["all", pool.core]] as const) {
    const ws = copies(core, t, bytes, rows, cols);
    const vs: Variant[] = [mk("Q4_0", "plain", 1, ws.length, 0, 0, rows, cols, "oneThread", (i) => core.gemv(ws[i], x))];
    const pairs: { r: number; p: { a: Matrix; b: Matrix; scale: number }[] }[] = [];
    for (const r of [8, 16, 64]) {
      const a = core.uploadF32(Float32Array.from({ length: r * cols }, (_, i) => Math.sin(i) * 0.01), r, cols);
      const b = core.uploadF32(Float32Array.from({ length: rows * r }, (_, i) => Math.cos(i) * 0.01), rows, r);
      const p = [{ a, b, scale: 0.5 }];
      pairs.push({ r, p });
      vs.push(mk("Q4_0", `r${r}`, 1, ws.length, 0, 0, rows, cols, "oneThread", (i) => core.gemvAdapted(ws[i], x, p)));
    }
    runInterleaved(vs);
    const base = median(vs[0].samples);
    for (let j = 1; j < vs.length; j++) res[key][vs[j].name] = round((100 * (median(vs[j].samples) - base)) / base, 1);
    for (const m of ws) core.free(m);
    for (const { p } of pairs) for (const q of p) (core.free(q.a), core.free(q.b));
  }
  return res as { one: { r8: number; r16: number; r64: number }; all: { r8: number; r16: number; r64: number } };
}

function mergeBench(core: Core) {
  const rows = 4096, cols = 4096, r = 16;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 0.1);
  const a = Float32Array.from({ length: r * cols }, (_, i) => Math.cos(i) * 0.01);
  const b = Float32Array.from({ length: rows * r }, (_, i) => Math.sin(i * 3) * 0.01);
  const wp = core.arena.put(w), ap = core.arena.put(a), bp = core.arena.put(b);
  const vs = [
    mk("F32", "wasm", 1, 1, 0, 0, rows, cols, "oneThread", () => core.call("merge_f32", wp, bp, ap, rows, cols, r, 0.5)),
    mk("F32", "ts", 1, 1, 0, 0, rows, cols, "oneThread", () => mergeRef(w, b, a, rows, cols, r, 0.5)),
  ];
  const saved = ROUNDS;
  // the plain TypeScript merge takes seconds: three interleaved rounds are enough
  for (let k = 0; k < Math.min(3, saved); k++) for (const v of k % 2 ? [...vs].reverse() : vs) v.samples.push(sample(v, { i: 0 }));
  core.arena.release(wp);
  core.arena.release(ap);
  core.arena.release(bp);
  const wasmMs = median(vs[0].samples), tsMs = median(vs[1].samples);
  return { rank: r, rows, cols, wasmMs: round(wasmMs, 1), tsMs: round(tsMs, 1), speedup: round(tsMs / wasmMs, 1) };
}

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;
const pad = (s: string, n: number) => s.padEnd(n);

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
