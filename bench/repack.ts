// Q4_0 GEMV benchmark: the plain row kernel against the four-rows-per-pass kernel on repacked weights, same run, cold and cache-resident.
import { parseArgs } from "node:util";
import os from "node:os";
import { GgmlType, ggmlTypeById } from "../src/gguf/ggml-types.js";
import { loadCore, Core, Matrix, KERNELS, ACTIVATIONS } from "../src/core/index.js";
import { Rng } from "../src/random.js";

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "9" },
    "ws-mib": { type: "string", default: "384" },
    "hot-kib": { type: "string", default: "384" },
    "sample-ms": { type: "string", default: "60" },
    shapes: { type: "string", default: "768x768,2048x768,768x2048,8000x768,4096x4096" },
    build: { type: "string", default: "best" },
  },
});
const ROUNDS = Number(args.rounds), WS = Number(args["ws-mib"]) * 2 ** 20, HOT = Number(args["hot-kib"]) * 1024;
const SAMPLE_MS = Number(args["sample-ms"]);
const Q4_0 = ggmlTypeById(GgmlType.Q4_0)!;
const Q4_0_KERNELS = KERNELS.get(Q4_0.id)!;
const log = (s: string) => (args.json ? process.stderr.write(s + "\n") : console.log(s));
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;

/** Seeded Q4_0 bytes with finite moderate scales. */
function weights(rows: number, cols: number, seed: number): Uint8Array {
  const b = new Uint8Array((rows * cols / 32) * 18);
  new Rng(seed).fill(b);
  for (let o = 0; o < b.length; o += 18) b[o + 1] = 0x20 + (b[o + 1] & 7);
  return b;
}

interface Variant { name: string; mode: "cold" | "hot"; bytes: number; call: (i: number) => void; n: number; samples: number[] }

/** ms per call: successive copies (cold) or the same cached matrix (hot) until SAMPLE_MS passed. */
function sample(v: Variant, pos: { i: number }): number {
  if (v.mode === "hot") v.call(0);
  const t0 = performance.now();
  let calls = 0, t = t0;
  do {
    v.call(pos.i++ % v.n);
    calls++;
    t = performance.now();
  } while (t - t0 < SAMPLE_MS || (v.mode === "cold" && calls < v.n));
  return (t - t0) / calls;
}

async function main() {
  const core: Core = await loadCore({ build: args.build as "best" | "simd", maxBytes: 2 ** 31 });
  log(`Q4_0 grouped-rows GEMV benchmark: ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}, build ${core.build}, 1 thread`);
  const results: Record<string, unknown>[] = [];
  for (const [rows, cols] of args.shapes.split(",").map((s) => s.split("x").map(Number))) {
    const bytes = weights(rows, cols, rows * 31 + cols);
    const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i * 0.37));
    const qx = core.arena.alloc(cols), dx = core.arena.alloc(cols / 8), xs = core.arena.alloc(cols / 8), y = core.arena.alloc(rows * 4);
    core.arena.scoped((s) => core.call(ACTIVATIONS[Q4_0_KERNELS.int8!.x].kernel!, s.put(x), cols, qx, dx, xs));
    const n = Math.max(2, Math.min(64, Math.floor(WS / bytes.length)));
    const plain: Matrix[] = Array.from({ length: n }, () => core.upload(Q4_0.id, bytes, rows, cols));
    const packed: Matrix[] = Array.from({ length: n }, () => core.repack(core.upload(Q4_0.id, bytes, rows, cols)));
    // cache-resident: a slice of whole groups about HOT bytes long
    const hotRows = Math.min(rows, Math.max(4, Math.floor(HOT / (bytes.length / rows) / 4) * 4));
    const hotBytes = bytes.subarray(0, hotRows * (bytes.length / rows));
    const hp = core.upload(Q4_0.id, hotBytes, hotRows, cols), hq = core.repack(core.upload(Q4_0.id, hotBytes, hotRows, cols));
    const k = (fn: string, ms: Matrix[], r: number) => (i: number) => core.call(fn, ms[i].ptr, qx, dx, xs, y, r, cols);
    const vs: Variant[] = [
      { name: "plain", mode: "cold", bytes: bytes.length, call: k(Q4_0_KERNELS.int8!.gemv, plain, rows), n, samples: [] },
      { name: "grouped", mode: "cold", bytes: bytes.length, call: k(Q4_0_KERNELS.layout!.int8.gemv, packed, rows), n, samples: [] },
      { name: "plain", mode: "hot", bytes: hotBytes.length, call: k(Q4_0_KERNELS.int8!.gemv, [hp], hotRows), n: 1, samples: [] },
      { name: "grouped", mode: "hot", bytes: hotBytes.length, call: k(Q4_0_KERNELS.layout!.int8.gemv, [hq], hotRows), n: 1, samples: [] },
    ];
    const pos = vs.map(() => ({ i: 0 }));
    vs.forEach((v, j) => sample(v, pos[j]));
    for (let r = 0; r < ROUNDS; r++) for (let j = 0; j < vs.length; j++) {
      const idx = (j + r) % vs.length;
      vs[idx].samples.push(sample(vs[idx], pos[idx]));
    }
    const gbs = (v: Variant) => v.bytes / median(v.samples) / 1e6;
    for (const mode of ["cold", "hot"] as const) {
      const [a, b] = vs.filter((v) => v.mode === mode);
      // the per-round ratio (samples taken back to back) drifts less than either figure
      const perRound = median(a.samples.map((t, i) => t / b.samples[i]));
      const row = { rows, cols, mode, plainGBs: round(gbs(a), 2), groupedGBs: round(gbs(b), 2), speedup: round(gbs(b) / gbs(a), 2), speedupPerRound: round(perRound, 2) };
      results.push(row);
      log(`${`${rows}x${cols}`.padEnd(10)} ${mode.padEnd(4)} plain ${row.plainGBs.toFixed(2).padStart(6)} GB/s  grouped ${row.groupedGBs.toFixed(2).padStart(6)} GB/s  x${row.speedup.toFixed(2)} (per round x${row.speedupPerRound.toFixed(2)})`);
    }
    for (const m of [...plain, ...packed, hp, hq]) core.free(m);
    for (const p of [qx, dx, xs, y]) core.arena.release(p);
  }
  if (args.json) console.log(JSON.stringify({ machine: { cpu: os.cpus()[0]?.model, node: process.version }, build: core.build, settings: { rounds: ROUNDS, workingSetMiB: WS / 2 ** 20, hotKiB: HOT / 1024 }, results }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
