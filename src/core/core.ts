// The wasm kernel core: typed calls over typed arrays and resident matrices, one instance, one arena; products through the type table.
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import { Arena } from "./arena.js";
import { KERNELS, kernelsFor } from "./kernels.js";
import { Products, type TermRows } from "./products.js";
import { CoreError, type BuildName, type KernelFn, type KernelHost, type Matrix, type ParallelRunner } from "./types.js";
import type { WasmInstance, WasmMemory } from "./wasm-api.js";

export { CoreError };
export type { BuildName, KernelCall, Matrix, ParallelRunner } from "./types.js";

/** One low-rank adapter pair on a matrix: y += scale * B (A x). A is r x cols, B is rows x r, both F32. */
export interface LowRankPair {
  readonly a: Matrix;
  readonly b: Matrix;
  readonly scale: number;
}

export interface GemvOptions {
  /** Quantize x to 8-bit blocks first and use integer dot products (default: where the type has such kernels). */
  x8?: boolean;
  /** Output array (length rows, or n x rows for gemm); a new one by default. */
  out?: Float32Array;
}

/** Scratch bytes the K-quant quantizers need (assembly/quant-k.ts). */
const QUANT_SCRATCH_BYTES = 512;

export class Core implements KernelHost {
  readonly arena: Arena;
  /** Set by a worker pool sharing this core's memory. */
  parallel: ParallelRunner | undefined;
  private readonly fns = new Map<string, KernelFn>();
  private profile: Map<string, number> | undefined;

  constructor(readonly instance: WasmInstance, readonly memory: WasmMemory, readonly build: BuildName, maxBytes?: number) {
    const base = (instance.exports.heap_base as () => number)() >>> 0;
    this.arena = new Arena(memory, base, maxBytes);
  }

  /** An exported kernel by name (timed while a profile is running). */
  fn(name: string): KernelFn {
    let f = this.fns.get(name);
    if (!f) {
      const raw = this.instance.exports[name] as KernelFn | undefined;
      if (typeof raw !== "function") throw new CoreError(`wasm core has no export ${name}`);
      const prof = this.profile;
      f = prof
        ? (...args: number[]) => {
            const t0 = performance.now();
            try {
              return raw(...args);
            } finally {
              prof.set(name, (prof.get(name) ?? 0) + performance.now() - t0);
            }
          }
        : raw;
      this.fns.set(name, f);
    }
    return f;
  }

  /** Calls a kernel directly (pointers are passed as unsigned offsets). */
  call(name: string, ...args: number[]): number | void {
    return this.fn(name)(...args);
  }

  /**
   * Times every kernel called on this thread from now on, by export name (milliseconds), until stopProfile.
   * Off by default: then kernels are called directly, with nothing in between.
   */
  startProfile(): void {
    this.profile = new Map();
    this.fns.clear();
  }

  /** Ends the profile and returns it. */
  stopProfile(): Map<string, number> {
    const p = this.profile ?? new Map<string, number>();
    this.profile = undefined;
    this.fns.clear();
    return p;
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

  /** True when the matrix can take its type's repacked layout (see `repack`). */
  canRepack(m: Matrix): boolean {
    const layout = KERNELS.get(m.type.id)?.layout;
    if (!layout || m.layout !== undefined || m.rows < layout.groupRows) return false;
    return layout.accepts(this.arena.u8(m.ptr, m.rows * m.rowBytes));
  }

  /**
   * Rearranges a resident matrix in place into its type's repacked layout (the table's `layout`, e.g. Q4_0 rows
   * in groups of four) and returns its new description; the old one must not be used for products any more.
   * A matrix that cannot take the layout comes back unchanged. Products give the same bits in either layout.
   */
  repack(m: Matrix): Matrix {
    if (!this.canRepack(m)) return m;
    const layout = KERNELS.get(m.type.id)!.layout!;
    this.arena.scoped((s) => this.call(layout.repack, m.ptr, m.rows, m.cols, s.alloc(layout.groupRows * m.rowBytes)));
    return Object.freeze({ ...m, layout: layout.name });
  }

  // ---- products (the engine's: same kernels, same bits) ----

  /** y = W x. */
  gemv(m: Matrix, x: Float32Array, opts: GemvOptions = {}): Float32Array {
    return this.gemvAdapted(m, x, [], opts);
  }

  /** y = W x + sum_i s_i B_i (A_i x), the adapter terms applied in the same row pass as W x where the kernels allow. */
  gemvAdapted(m: Matrix, x: Float32Array, pairs: readonly LowRankPair[], opts: GemvOptions = {}): Float32Array {
    if (x.length !== m.cols) throw new CoreError(`gemv: x has ${x.length} values, matrix has ${m.cols} columns`);
    return this.products(m, x, 1, pairs, opts);
  }

  /** Y = X W^T for n rows of x (n x cols, row after row): n x rows, each row as gemv gives it. */
  gemm(m: Matrix, x: Float32Array, n: number, opts: GemvOptions = {}): Float32Array {
    if (!Number.isInteger(n) || n < 1 || x.length !== n * m.cols) throw new CoreError(`gemm: x has ${x.length} values, not ${n} rows of ${m.cols}`);
    return this.products(m, x, n, [], opts);
  }

  private products(m: Matrix, x: Float32Array, n: number, pairs: readonly LowRankPair[], opts: GemvOptions): Float32Array {
    const out = opts.out ?? new Float32Array(n * m.rows);
    if (out.length < n * m.rows) throw new CoreError(`gemv: out has ${out.length} values, need ${n * m.rows}`);
    for (const p of pairs) checkPair(m, p);
    const terms: TermRows[] = pairs.map((p) => ({ term: { a: p.a, b: p.b, rank: p.a.rows, scale: p.scale }, row0: 0, n }));
    return this.arena.scoped((s) => {
      const xp = s.put(x);
      const yp = s.alloc(n * m.rows * 4);
      const P = new Products(this, m.cols, n);
      try {
        P.x8 = opts.x8 ?? true;
        P.setInput(xp, m.cols, n);
        P.run([{ w: m, y: yp, terms }]);
      } finally {
        P.dispose();
      }
      out.set(this.arena.f32(yp, n * m.rows));
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
      this.call(kernelsFor(GgmlType.F32).float.gemmAcc!, b.ptr, tp, yp, b.rows, b.cols, 1, b.rows, s);
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
