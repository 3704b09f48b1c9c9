// Compact adapter halves for quantized bases: A as Q8_0 rows, B as int8 rows with a scale and an integer sum per row, and their resident layout.
import type { Core } from "./core.js";
import { CoreError } from "./types.js";
import { GgmlType } from "../gguf/ggml-types.js";
import { LORA_T_HEADER, loraRankPad, loraTBytes, type LoraQ8Pair } from "./lora-layout.js";

export { LORA_T_HEADER, loraRankPad, loraTBytes, type LoraQ8Pair };

/** B packed for lora_b_q8_acc: rows of rPad int8 (zero-padded past the rank), and per row its f32 scale and the i32 sum of its int8 values. */
export interface PackedLoraB {
  readonly q: Int8Array;
  readonly scales: Float32Array;
  readonly sums: Int32Array;
  readonly rows: number;
  readonly rank: number;
  readonly rPad: number;
}

/** Nearest integer, ties to even (the wasm `nearest`). */
export function roundEven(v: number): number {
  const f = Math.floor(v), r = v - f;
  return r > 0.5 ? f + 1 : r < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** B (rows x rank f32, row-major) to int8 per row: scale max|row| / 127, values rounded to nearest, ties to even. */
export function packLoraB(b: Float32Array, rows: number, rank: number): PackedLoraB {
  if (b.length !== rows * rank) throw new CoreError(`packLoraB: ${b.length} values, expected ${rows} x ${rank}`);
  const rPad = loraRankPad(rank);
  const q = new Int8Array(rows * rPad);
  const scales = new Float32Array(rows);
  const sums = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let k = 0; k < rank; k++) amax = Math.max(amax, Math.abs(b[r * rank + k]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    let sum = 0;
    for (let k = 0; k < rank; k++) {
      const v = Math.min(127, Math.max(-127, roundEven(Math.fround(b[r * rank + k] * id))));
      q[r * rPad + k] = v;
      sum += v;
    }
    scales[r] = d;
    sums[r] = sum;
  }
  return { q, scales, sums, rows, rank, rPad };
}

/** The per-row (f32 scale, i32 sum) pairs lora_b_q8_acc reads, 8 bytes a row. */
export function loraBMeta(p: PackedLoraB): Uint8Array {
  const meta = new Uint8Array(p.rows * 8);
  const f = new Float32Array(meta.buffer), i = new Int32Array(meta.buffer);
  for (let r = 0; r < p.rows; r++) {
    f[2 * r] = p.scales[r];
    i[2 * r + 1] = p.sums[r];
  }
  return meta;
}

/** The f32 values a packed B stands for (scale times int8), rows x rank. */
export function unpackLoraB(p: PackedLoraB): Float32Array {
  const out = new Float32Array(p.rows * p.rank);
  for (let r = 0; r < p.rows; r++) {
    const d = p.scales[r];
    for (let k = 0; k < p.rank; k++) out[r * p.rank + k] = p.q[r * p.rPad + k] * d;
  }
  return out;
}

/** True when A (rank x cols) can be stored as Q8_0 rows. */
export function loraQ8Fits(cols: number): boolean {
  return cols > 0 && cols % 32 === 0;
}

/** Quantizes and uploads both halves (A: rank x cols, B: rows x rank, f32 row-major). */
export function uploadLoraQ8(core: Core, a: Float32Array, b: Float32Array, rows: number, cols: number, rank: number): LoraQ8Pair {
  if (!loraQ8Fits(cols)) throw new CoreError(`compact adapter: ${cols} columns is no multiple of 32`);
  if (a.length !== rank * cols) throw new CoreError(`compact adapter: A has ${a.length} values, expected ${rank} x ${cols}`);
  const aq = core.upload(GgmlType.Q8_0, core.quantize(GgmlType.Q8_0, a), rank, cols);
  try {
    const p = packLoraB(b, rows, rank);
    const bp = core.arena.put(new Uint8Array(p.q.buffer, p.q.byteOffset, p.q.byteLength));
    const meta = loraBMeta(p);
    const mp = core.arena.put(meta);
    return { a: aq, b: bp, meta: mp, rows, rank, rPad: p.rPad, bytes: aq.rows * aq.rowBytes + p.q.byteLength + meta.byteLength };
  } catch (e) {
    core.free(aq);
    throw e;
  }
}

export function freeLoraQ8(core: Core, p: LoraQ8Pair): void {
  core.free(p.a);
  core.arena.release(p.b);
  core.arena.release(p.meta);
}

/**
 * y += s B (A x) through the compact kernels on typed arrays (x quantized to 8-bit blocks of 32 first):
 * the path the engine runs, for tests and tools.
 */
export function loraQ8Apply(core: Core, p: LoraQ8Pair, x: Float32Array, y: Float32Array, s: number): Float32Array {
  const cols = p.a.cols;
  if (x.length !== cols || y.length !== p.rows) throw new CoreError("loraQ8Apply: shape mismatch");
  return core.arena.scoped((sc) => {
    const xp = sc.put(x), yp = sc.put(y);
    const qx = sc.alloc(cols), dx = sc.alloc((cols / 32) * 4), xs = sc.alloc((cols / 32) * 4);
    const tp = sc.alloc(p.rank * 4), tq = sc.alloc(loraTBytes(p.rank));
    core.call("quantize_x8", xp, cols, qx, dx, xs);
    core.call("gemv_q8_0_q8", p.a.ptr, qx, dx, xs, tp, p.rank, cols);
    core.call("lora_quantize_t", tp, p.rank, p.rPad, tq);
    core.call("lora_b_q8_acc", p.b, p.meta, tq, yp, p.rows, p.rPad, s);
    y.set(core.arena.f32(yp, p.rows));
    return y;
  });
}
