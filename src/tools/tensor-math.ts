// The heavy tensor math of the tools (decode, encode, W += s·B·A) on the wasm core, with a plain TypeScript fallback.
import { ggmlTypeById } from "../gguf/ggml-types.js";
import { KERNELS, createPool, loadCore, type Core, type KernelCall, type KernelPool } from "../core/index.js";
import { canCode, decodeToF32, encodeFromF32 } from "./tensor-codec.js";
import { tsMatmul, type Matmul } from "./linalg.js";
import { mergeRef } from "../core/reference/lowrank.js";

export interface TensorMath {
  /** "wasm" when the wasm core runs the kernels, "ts" for the plain TypeScript fallback. */
  readonly engine: "wasm" | "ts";
  /** Why the fallback is in use, when it is. */
  readonly fallbackReason?: string;
  canDecode(typeId: number): boolean;
  canEncode(typeId: number): boolean;
  decode(typeId: number, bytes: Uint8Array, n: number): Float32Array;
  encode(typeId: number, x: Float32Array): Uint8Array;
  /** W (rows x cols) += s · B (rows x r) · A (r x cols), in place. */
  merge(w: Float32Array, b: Float32Array, a: Float32Array, rows: number, cols: number, r: number, s: number): void;
  /**
   * Decode a tensor (rows x cols of `typeIn`), add every s·B·A, encode as `typeOut`. The wasm engine keeps the
   * f32 rows inside its own memory for the whole step (no copies out and back).
   */
  mergeTensor(typeIn: number, bytes: Uint8Array, rows: number, cols: number, deltas: readonly MergeDelta[], typeOut: number): Uint8Array;
  /** C (m x n) = X (m x k) · Y (k x n), f32 row-major. */
  matmul: Matmul;
}

export interface MergeDelta {
  b: Float32Array;
  a: Float32Array;
  rank: number;
  s: number;
}

const tsMath: TensorMath = {
  engine: "ts",
  canDecode: (t) => KERNELS.has(t),
  canEncode: (t) => canCode(t),
  decode: (t, bytes, n) => decodeToF32(bytes, t, n),
  encode: (t, x) => encodeFromF32(x, t),
  // The core's scalar reference: the same f32 operation order as the wasm kernel, so both engines agree bit for bit.
  merge: (w, b, a, rows, cols, r, s) => mergeRef(w, b, a, rows, cols, r, s),
  matmul: tsMatmul,
  mergeTensor(typeIn, bytes, rows, cols, deltas, typeOut) {
    const w = decodeToF32(bytes, typeIn, rows * cols);
    for (const d of deltas) mergeRef(w, d.b, d.a, rows, cols, d.rank, d.s);
    return encodeFromF32(w, typeOut);
  },
};

function wasmMath(core: Core): TensorMath {
  return {
    engine: "wasm",
    canDecode: (t) => KERNELS.has(t),
    canEncode: (t) => KERNELS.get(t)?.quantize !== undefined,
    decode: (t, bytes, n) => core.dequantize(t, bytes, n),
    encode: (t, x) => core.quantize(t, x),
    merge: (w, b, a, rows, cols, r, s) => { core.merge(w, b, a, rows, cols, r, s); },
    matmul: (x, y, m, k, n) => core.matmul(x, y, m, k, n),
    mergeTensor(typeIn, bytes, rows, cols, deltas, typeOut) {
      const kin = KERNELS.get(typeIn)!;
      const kout = KERNELS.get(typeOut)!;
      const n = rows * cols;
      const outBytes = (n / kout.traits.blockSize) * kout.traits.typeSize;
      return core.arena.scoped((sc) => {
        const src = sc.put(bytes);
        const w = sc.alloc(n * 4);
        core.call(kin.dequant, src, w, n / kin.traits.blockSize);
        for (const d of deltas) core.call("merge_f32", w, sc.put(d.b), sc.put(d.a), rows, cols, d.rank, d.s);
        const dst = sc.alloc(outBytes);
        core.call(kout.quantize!, w, dst, n / kout.traits.blockSize);
        return core.arena.u8(dst, outBytes).slice();
      });
    },
  };
}

/** Scratch handed to each quantize call (K-quant searches keep their work arrays there; others ignore it). */
const QUANT_SCRATCH_BYTES = 512;

/**
 * The wasm math on a worker pool: mergeTensor splits each tensor's rows into one range per thread and runs
 * dequantize, every W += s·B·A and quantize of a range on one thread. Rows are independent in all three steps,
 * so the bytes equal the single-thread path's.
 */
function pooledMath(pool: KernelPool): TensorMath {
  const core = pool.core;
  return {
    ...wasmMath(core),
    mergeTensor(typeIn, bytes, rows, cols, deltas, typeOut) {
      const kin = KERNELS.get(typeIn)!;
      const kout = KERNELS.get(typeOut)!;
      const n = rows * cols;
      const outBytes = (n / kout.traits.blockSize) * kout.traits.typeSize;
      const inRowBytes = (cols / kin.traits.blockSize) * kin.traits.typeSize;
      const outRowBytes = (cols / kout.traits.blockSize) * kout.traits.typeSize;
      return core.arena.scoped((sc) => {
        const src = sc.put(bytes);
        const w = sc.alloc(n * 4);
        const ds = deltas.map((d) => ({ b: sc.put(d.b), a: sc.put(d.a), rank: d.rank, s: d.s }));
        const dst = sc.alloc(outBytes);
        const parts: KernelCall[][] = [];
        const threads = Math.min(pool.threads, rows);
        for (let i = 0; i < threads; i++) {
          const r0 = Math.floor((rows * i) / threads);
          const r1 = Math.floor((rows * (i + 1)) / threads);
          const m = r1 - r0;
          const wr = w + r0 * cols * 4;
          const calls: KernelCall[] = [{ fn: kin.dequant, args: [src + r0 * inRowBytes, wr, (m * cols) / kin.traits.blockSize] }];
          for (const d of ds) calls.push({ fn: "merge_f32", args: [wr, d.b + r0 * d.rank * 4, d.a, m, cols, d.rank, d.s] });
          calls.push({ fn: kout.quantize!, args: [wr, dst + r0 * outRowBytes, (m * cols) / kout.traits.blockSize, sc.alloc(QUANT_SCRATCH_BYTES)] });
          parts.push(calls);
        }
        pool.run(parts);
        return core.arena.u8(dst, outBytes).slice();
      });
    },
  };
}

/** Tensor math over `threads` threads (a worker pool) with a dispose() that stops them. */
export interface ParallelTensorMath {
  math: TensorMath;
  /** Threads the math runs on. */
  threads: number;
  dispose(): void;
}

/**
 * The wasm math on a pool of `threads` threads; one thread, a pool that cannot start, or engine "ts" give the
 * single-thread math (dispose() then does nothing).
 */
export async function parallelTensorMath(engine: "auto" | "wasm" | "ts", threads: number): Promise<ParallelTensorMath> {
  if (engine !== "ts" && threads > 1) {
    try {
      const pool = await createPool({ threads });
      return { math: pooledMath(pool), threads: pool.threads, dispose: () => pool.dispose() };
    } catch (e) {
      if (engine === "wasm") throw e;
    }
  }
  return { math: await tensorMath(engine), threads: 1, dispose: () => undefined };
}

let shared: Promise<TensorMath> | undefined;

/**
 * The wasm core when it loads here (the default), else the TypeScript fallback; "ts" forces the fallback.
 * The core's memory grows to the largest tensor handled (4 GiB at most).
 */
export function tensorMath(engine: "auto" | "wasm" | "ts" = "auto"): Promise<TensorMath> {
  if (engine === "ts") return Promise.resolve(tsMath);
  if (engine === "wasm") return loadCore().then(wasmMath);
  shared ??= loadCore().then(wasmMath, (e: unknown) => ({ ...tsMath, fallbackReason: e instanceof Error ? e.message : String(e) }));
  return shared;
}

/** Type name for messages. */
export const typeName = (id: number): string => ggmlTypeById(id)?.name ?? String(id);
