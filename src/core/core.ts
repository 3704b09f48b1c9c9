// The wasm kernel core: typed calls over typed arrays and resident matrices, one instance, one arena.
import { LoraEdgeError } from "../errors.js";
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import { Arena, Scope } from "./arena.js";
import { kernelsFor, TypeKernels } from "./kernels.js";
import { gemvX8KernelOf } from "./repack.js";
import type { WasmInstance, WasmMemory } from "./wasm-api.js";

/** Which compiled build an instance runs. */
export type BuildName = "simd" | "relaxed" | "threads" | "threads-relaxed";

/** One kernel invocation: export name and numeric arguments. */
export interface KernelCall {
  fn: string;
  args: number[];
}

/** Runs lists of calls on several threads at once: parts[0] on the calling thread. */
export interface ParallelRunner {
  readonly threads: number;
  /** Work (bytes of weights) below which a product stays on one thread. */
  readonly minParallelBytes: number;
  run(parts: KernelCall[][]): void;
}

/** A weight matrix resident in wasm memory: rows of `cols` values of one ggml type. */
export interface Matrix {
  readonly ptr: number;
  readonly type: GgmlTypeTraits;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
  /** "q4_0x4": Q4_0 rows interleaved in groups of four (see repack.ts); absent: rows one after another. */
  readonly layout?: "q4_0x4";
}

/** One low-rank adapter pair on a matrix: y += scale * B (A x). A is r x cols, B is rows x r, both F32. */
export interface LowRankPair {
  readonly a: Matrix;
  readonly b: Matrix;
  readonly scale: number;
}

export interface GemvOptions {
  /** Quantize x to 8-bit blocks first and use integer dot products (default: where the type has such a kernel). */
  x8?: boolean;
  /** Output array (length rows); a new one by default. */
  out?: Float32Array;
}

export class CoreError extends LoraEdgeError {
  constructor(message: string) {
    super("CORE", message);
  }
}

type Fn = (...args: number[]) => number | void;

/** Scratch bytes the K-quant quantizers need (assembly/quant-k.ts). */
const QUANT_SCRATCH_BYTES = 512;

export class Core {
  readonly arena: Arena;
  /** Set by a worker pool sharing this core's memory. */
  parallel: ParallelRunner | undefined;
  private readonly fns = new Map<string, Fn>();

  constructor(readonly instance: WasmInstance, readonly memory: WasmMemory, readonly build: BuildName, maxBytes?: number) {
    const base = (instance.exports.heap_base as () => number)() >>> 0;
    this.arena = new Arena(memory, base, maxBytes);
  }

  /** An exported kernel by name. */
  fn(name: string): Fn {
    let f = this.fns.get(name);
    if (!f) {
      f = this.instance.exports[name] as Fn | undefined;
      if (typeof f !== "function") throw new CoreError(`wasm core has no export ${name}`);
      this.fns.set(name, f);
    }
    return f;
  }

  /** Calls a kernel directly (pointers are passed as unsigned offsets). */
  call(name: string, ...args: number[]): number | void {
    return this.fn(name)(...args);
  }

  // ---- conversions ----

  /** Decodes n values of a ggml type to f32 (bit-exact with ggml's to_float). */
  dequantize(typeId: number, src: Uint8Array, n?: number): Float32Array {
    const k = kernelsFor(typeId, "dequantize");
    const t = k.traits;
    const count = n ?? (src.byteLength / t.typeSize) * t.blockSize;
    checkBlocks(t, count);
    const bytes = (count / t.blockSize) * t.typeSize;
    if (src.byteLength < bytes) throw new CoreError(`dequantize ${t.name}: ${count} values need ${bytes} bytes, got ${src.byteLength}`);
    return this.arena.scoped((s) => {
      const sp = s.put(src.subarray(0, bytes));
      const dp = s.alloc(count * 4);
      this.call(k.dequant, sp, dp, count / t.blockSize);
      return this.arena.f32(dp, count).slice();
    });
  }

  /** Encodes f32 values to a ggml type (bit-exact with ggml's reference quantizer). */
  quantize(typeId: number, x: Float32Array): Uint8Array {
    const k = kernelsFor(typeId, "quantize");
    if (!k.quantize) throw new CoreError(`no quantize kernel for ${k.traits.name}`);
    const t = k.traits;
    checkBlocks(t, x.length);
    const bytes = (x.length / t.blockSize) * t.typeSize;
    return this.arena.scoped((s) => {
      const sp = s.put(x);
      const dp = s.alloc(bytes);
      // K-quant searches keep their work arrays in a scratch block (other quantizers ignore the argument)
      this.call(k.quantize!, sp, dp, x.length / t.blockSize, s.alloc(QUANT_SCRATCH_BYTES));
      return this.arena.u8(dp, bytes).slice();
    });
  }

  // ---- resident matrices ----

  /** Copies a weight matrix (rows x cols of a ggml type) into wasm memory. */
  upload(typeId: number, bytes: Uint8Array, rows: number, cols: number): Matrix {
    const type = ggmlTypeById(typeId);
    if (!type) throw new CoreError(`unknown ggml type ${typeId}`);
    checkBlocks(type, cols);
    const rowBytes = (cols / type.blockSize) * type.typeSize;
    if (bytes.byteLength !== rowBytes * rows) {
      throw new CoreError(`upload ${type.name} ${rows}x${cols}: expected ${rowBytes * rows} bytes, got ${bytes.byteLength}`);
    }
    const ptr = this.arena.put(bytes);
    return Object.freeze({ ptr, type, rows, cols, rowBytes });
  }

  uploadF32(values: Float32Array, rows: number, cols: number): Matrix {
    return this.upload(GgmlType.F32, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), rows, cols);
  }

  free(m: Matrix): void {
    this.arena.release(m.ptr);
  }

  // ---- products ----

  /** y = W x. */
  gemv(m: Matrix, x: Float32Array, opts: GemvOptions = {}): Float32Array {
    return this.gemvAdapted(m, x, [], opts);
  }

  /** y = W x + sum_i s_i B_i (A_i x), the adapter terms applied in the same row pass as W x. */
  gemvAdapted(m: Matrix, x: Float32Array, pairs: readonly LowRankPair[], opts: GemvOptions = {}): Float32Array {
    if (x.length !== m.cols) throw new CoreError(`gemv: x has ${x.length} values, matrix has ${m.cols} columns`);
    const out = opts.out ?? new Float32Array(m.rows);
    if (out.length < m.rows) throw new CoreError(`gemv: out has ${out.length} values, need ${m.rows}`);
    const k = kernelsFor(m.type.id, "gemv");
    for (const p of pairs) checkPair(m, p);
    return this.arena.scoped((s) => {
      const xp = s.put(x);
      const yp = s.alloc(m.rows * 4);
      const tps = pairs.map((p) => {
        const tp = s.alloc(p.a.rows * 4);
        this.call("gemv_f32", p.a.ptr, xp, tp, p.a.rows, p.a.cols);
        return tp;
      });
      const rowCalls = this.gemvCalls(s, k, m, xp, yp, opts.x8 ?? k.gemvX8 !== undefined);
      this.runRows(m.rows * m.rowBytes, m.rows, (r0, n, t) => {
        const calls = rowCalls(r0, n, t);
        pairs.forEach((p, i) => {
          calls.push({ fn: "gemv_f32_acc", args: [p.b.ptr + r0 * p.b.rowBytes, tps[i], yp + r0 * 4, n, p.b.cols, p.scale] });
        });
        return calls;
      });
      out.set(this.arena.f32(yp, m.rows));
      return out;
    });
  }

  /** t = A x for an F32 matrix A (the first half of a low-rank product). */
  lowRankA(a: Matrix, x: Float32Array): Float32Array {
    return this.gemv(a, x, { x8: false });
  }

  /** y += s B t for an F32 matrix B (the second half). */
  lowRankB(b: Matrix, t: Float32Array, y: Float32Array, s = 1): Float32Array {
    if (b.type.id !== GgmlType.F32) throw new CoreError("lowRankB: B must be F32");
    if (t.length !== b.cols || y.length !== b.rows) throw new CoreError("lowRankB: shape mismatch");
    return this.arena.scoped((sc) => {
      const tp = sc.put(t);
      const yp = sc.put(y);
      this.call("gemv_f32_acc", b.ptr, tp, yp, b.rows, b.cols, s);
      y.set(this.arena.f32(yp, b.rows));
      return y;
    });
  }

  /** W += s B A in place on f32 rows (W rows x cols, B rows x r, A r x cols). */
  merge(w: Float32Array, b: Float32Array, a: Float32Array, rows: number, cols: number, r: number, s: number): Float32Array {
    if (w.length !== rows * cols || b.length !== rows * r || a.length !== r * cols) throw new CoreError("merge: shape mismatch");
    return this.arena.scoped((sc) => {
      const wp = sc.put(w), bp = sc.put(b), ap = sc.put(a);
      this.call("merge_f32", wp, bp, ap, rows, cols, r, s);
      w.set(this.arena.f32(wp, rows * cols));
      return w;
    });
  }

  /** C = A B for f32 row-major A (m x k) and B (k x n). */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
    if (a.length !== m * k || b.length !== k * n) throw new CoreError("matmul: shape mismatch");
    return this.arena.scoped((sc) => {
      const ap = sc.put(a), bp = sc.put(b), cp = sc.alloc(m * n * 4);
      this.call("matmul_f32", ap, bp, cp, m, k, n);
      return this.arena.f32(cp, m * n).slice();
    });
  }

  // ---- row splitting ----

  /** The calls computing rows [r0, r0+n) of y = W x on thread t. */
  private gemvCalls(s: Scope, k: TypeKernels, m: Matrix, xp: number, yp: number, x8: boolean): (r0: number, n: number, t: number) => KernelCall[] {
    const w = (r0: number) => m.ptr + r0 * m.rowBytes;
    if (m.layout && !x8) throw new CoreError(`gemv: a ${m.layout} matrix takes 8-bit x only`);
    if (x8 && k.gemvX8) {
      const nb = m.cols / 32;
      if (m.cols % 32 !== 0) throw new CoreError(`gemv x8: ${m.cols} columns is no multiple of 32`);
      const qx = s.alloc(m.cols), dx = s.alloc(nb * 4), xs = s.alloc(nb * 4);
      this.call("quantize_x8", xp, m.cols, qx, dx, xs);
      const fn = gemvX8KernelOf(m, k.gemvX8)!;
      return (r0, n) => [{ fn, args: [w(r0), qx, dx, xs, yp + r0 * 4, n, m.cols] }];
    }
    if (!k.gemvF32Scratch) return (r0, n) => [{ fn: k.gemvF32, args: [w(r0), xp, yp + r0 * 4, n, m.cols] }];
    const threads = this.parallel?.threads ?? 1;
    const scratch = Array.from({ length: threads }, () => s.alloc(m.cols * 4));
    return (r0, n, t) => [{ fn: k.gemvF32, args: [w(r0), xp, yp + r0 * 4, n, m.cols, scratch[t]] }];
  }

  /** Runs row-range calls on one thread, or split by rows over the pool when the work is large. */
  private runRows(workBytes: number, rows: number, make: (r0: number, n: number, t: number) => KernelCall[]): void {
    const p = this.parallel;
    if (!p || p.threads < 2 || workBytes < p.minParallelBytes || rows < 2 * p.threads) {
      for (const c of make(0, rows, 0)) this.call(c.fn, ...c.args);
      return;
    }
    const parts: KernelCall[][] = [];
    // multiples of 4 rows, so that ranges start on a group of a q4_0x4 matrix
    const per = Math.ceil(rows / p.threads / 4) * 4;
    for (let t = 0, r0 = 0; t < p.threads && r0 < rows; t++, r0 += per) parts.push(make(r0, Math.min(per, rows - r0), t));
    p.run(parts);
  }
}

function checkBlocks(t: GgmlTypeTraits, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n % t.blockSize !== 0) {
    throw new CoreError(`${t.name}: ${n} values is no multiple of the block size ${t.blockSize}`);
  }
}

function checkPair(m: Matrix, p: LowRankPair): void {
  if (p.a.type.id !== GgmlType.F32 || p.b.type.id !== GgmlType.F32) throw new CoreError("adapter A and B must be F32");
  if (p.a.cols !== m.cols || p.b.rows !== m.rows || p.b.cols !== p.a.rows) {
    throw new CoreError(`adapter shapes A ${p.a.rows}x${p.a.cols}, B ${p.b.rows}x${p.b.cols} do not fit W ${m.rows}x${m.cols}`);
  }
}
