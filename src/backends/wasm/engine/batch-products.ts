// Matrix products for a batch of tokens over resident weights: Y = X W^T (+ adapters per token), each weight row read once per batch.
import type { Core, KernelCall, Matrix } from "../../../core/core.js";
import { BATCH_KERNELS } from "../../../core/batch-kernels.js";
import { kernelsFor } from "../../../core/kernels.js";
import { GEMM_Q4_0X4, gemvX8KernelOf } from "../../../core/repack.js";
import { GgmlType } from "../../../gguf/ggml-types.js";
import { loraTBytes } from "../../../core/lora-q8.js";
import { F16_SCALED_X8, K_BLOCK_X8, LoraTerm } from "./products.js";

type Fn = (...args: number[]) => unknown;

/** Calls one worker slot takes at most (256 numbers; a call is 2 + up to 10, lora_b_q8_acc_batch's 10 included). */
const MAX_CALLS_PER_PART = 20;

/**
 * A batch goes to the threads when its weight bytes times its tokens reach this many times the pool's
 * threshold for one token: tiny matrices (stories260K's 16 KiB) ran slower split, even over 32 tokens.
 */
const PARALLEL_FACTOR = 4;

/** Scratch bytes of one term for n tokens: T in f32 (rows padded to 16 values), then for compact terms each token's quantized t. */
function termBytes(term: LoraTerm, n: number): number {
  const f32 = n * Math.ceil(term.rank / 16) * 64;
  return term.q8 ? f32 + n * loraTBytes(term.q8.rank) : f32;
}

/** Row-range calls of one product: rows [r0, r0+n) on thread t. */
interface RowWork {
  rows: number;
  make(r0: number, n: number, t: number): KernelCall[];
}

/**
 * Runs Y = X W^T + sum_i s_i (X A_i^T) B_i^T for n tokens: X is n rows of `cols` f32 (token-major) and Y
 * n rows of W.rows f32. Each token's outputs equal those of `Products` for that token alone, bit for bit:
 * x is quantized per token by the same quantizer and the batch kernels keep the single-token order.
 */
export class BatchProducts {
  /** 8-bit forms of the inputs, one per quantizer (blocks of 32 with f32 scales, with f16 scales, blocks of 256). */
  private readonly x8Bufs: { qx: number; dx: number; xs: number }[];
  private readonly xh: number;
  private t: number;
  private tBytes = 0;
  private readonly scratch: number[];
  private readonly fns = new Map<string, Fn>();
  private inputPtr = -1;
  private inputCols = 0;
  private n = 0;
  private x8Ready = 0;
  private haveF16 = false;

  /** Quantize x to 8 bits for weight types with an integer kernel (as `Products.x8`). */
  x8 = true;

  constructor(private readonly core: Core, maxCols: number, readonly maxTokens: number) {
    const a = core.arena;
    const cols = Math.ceil(maxCols / 256) * 256;
    this.x8Bufs = [0, 1, 2].map(() => ({ qx: a.alloc(maxTokens * cols), dx: a.alloc(maxTokens * (cols / 32) * 4), xs: a.alloc(maxTokens * (cols / 32) * 4) }));
    this.xh = a.alloc(maxTokens * cols * 4);
    this.t = 0;
    const threads = core.parallel?.threads ?? 1;
    this.scratch = Array.from({ length: threads }, () => a.alloc(cols * 4));
  }

  /** Releases the scratch memory. */
  dispose(): void {
    const a = this.core.arena;
    for (const b of this.x8Bufs) for (const p of [b.qx, b.dx, b.xs]) a.release(p);
    a.release(this.xh);
    if (this.t) a.release(this.t);
    for (const p of this.scratch) a.release(p);
  }

  private fn(name: string): Fn {
    let f = this.fns.get(name);
    if (!f) {
      f = this.core.fn(name) as Fn;
      this.fns.set(name, f);
    }
    return f;
  }

  /** Declares n token rows of `cols` f32 at `ptr` as the input of the next products. */
  setInput(ptr: number, cols: number, n: number): void {
    if (n < 1 || n > this.maxTokens) throw new RangeError(`batch of ${n} tokens, at most ${this.maxTokens}`);
    this.inputPtr = ptr;
    this.inputCols = cols;
    this.n = n;
    this.x8Ready = 0;
    this.haveF16 = false;
  }

  /** Y = X W^T (+ adapter terms) for the current input; y holds n rows of w.rows values. */
  gemm(w: Matrix, y: number, terms: readonly LoraTerm[] = []): void {
    this.gemmGroup([{ w, y, terms }]);
  }

  /** Several products of the current input (q, k, v; gate, up), their row ranges spread over the threads together. */
  gemmGroup(items: readonly { w: Matrix; y: number; terms?: readonly LoraTerm[] }[]): void {
    const n = this.n, x = this.inputPtr;
    // first halves of the adapter terms, T_i = X A_i^T (n x r, small, on this thread)
    const need = items.reduce((s, it) => s + (it.terms ?? []).reduce((a, term) => a + termBytes(term, n), 0), 0);
    if (need > this.tBytes) {
      if (this.t) this.core.arena.release(this.t);
      this.tBytes = need;
      this.t = this.core.arena.alloc(need);
    }
    let off = this.t;
    const works: RowWork[] = [];
    let bytes = 0;
    for (const it of items) {
      const base = this.baseWork(it.w, it.y);
      const terms = it.terms ?? [];
      const tps = terms.map((term) => {
        const tp = off;
        off += termBytes(term, n);
        const q = term.q8;
        if (!q) {
          this.fn("gemm_f32")(term.a.ptr, x, tp, term.a.rows, term.a.cols, n, term.a.rows);
          return tp;
        }
        // T = X A^T on each token's 8-bit x, then each token's t to 7-bit integers for the B rows
        const xb = this.x8Blocks32();
        const tq = tp + n * Math.ceil(q.rank / 16) * 64;
        if (n > 1) this.fn("gemm_q8_0_q8")(q.a.ptr, xb.qx, xb.dx, xb.xs, tp, q.rank, q.a.cols, n, q.rank);
        else this.fn("gemv_q8_0_q8")(q.a.ptr, xb.qx, xb.dx, xb.xs, tp, q.rank, q.a.cols);
        const quantizeT = this.fn("lora_quantize_t"), tBytes = loraTBytes(q.rank);
        for (let i = 0; i < n; i++) quantizeT(tp + i * q.rank * 4, q.rank, q.rPad, tq + i * tBytes);
        return tq;
      });
      const rows = it.w.rows, y = it.y;
      bytes += n * rows * it.w.rowBytes;
      works.push({
        rows,
        make: (r0, nr, t) => {
          const out = base(r0, nr, t);
          terms.forEach((term, i) => {
            const q = term.q8;
            if (q) out.push({ fn: "lora_b_q8_acc_batch", args: [q.b + r0 * q.rPad, q.meta + r0 * 8, tps[i], loraTBytes(q.rank), y + r0 * 4, nr, q.rPad, term.scale, n, rows] });
            else out.push({ fn: "gemm_f32_acc", args: [term.b.ptr + r0 * term.b.rowBytes, tps[i], y + r0 * 4, nr, term.b.cols, n, rows, term.scale] });
          });
          return out;
        },
      });
    }
    this.run(works, bytes);
  }

  /** Runs the products on this thread, or split by rows over the pool (in rounds that fit the workers' slots). */
  private run(works: readonly RowWork[], bytes: number): void {
    const p = this.core.parallel;
    if (!p || p.threads < 2 || bytes < PARALLEL_FACTOR * p.minParallelBytes || works.some((w) => w.rows < 2 * p.threads)) {
      for (const w of works) for (const c of w.make(0, w.rows, 0)) this.fn(c.fn)(...c.args);
      return;
    }
    const parts: KernelCall[][] = Array.from({ length: p.threads }, () => []);
    for (const w of works) {
      // row ranges aligned to 16 rows keep each thread's outputs on their own cache lines
      const per = Math.ceil(w.rows / p.threads / 16) * 16;
      for (let t = 0, r0 = 0; t < p.threads && r0 < w.rows; t++, r0 += per) parts[t].push(...w.make(r0, Math.min(per, w.rows - r0), t));
    }
    // each thread's calls keep their order across rounds; threads own disjoint rows
    const rounds = Math.ceil(Math.max(...parts.map((c) => c.length)) / MAX_CALLS_PER_PART);
    for (let k = 0; k < rounds; k++) {
      p.run(parts.map((c) => c.slice(k * MAX_CALLS_PER_PART, (k + 1) * MAX_CALLS_PER_PART)).filter((c, t) => t === 0 || c.length > 0));
    }
  }

  /**
   * Every token's input in 8-bit blocks of 32 with one scale per block (what the Q8_0 kernels read), picked
   * as `Products` picks it for one token: the base's f16-scaled form when it made one, else quantize_x8.
   */
  private x8Blocks32(): { qx: number; dx: number; xs: number } {
    if (this.x8Ready & (1 << 2)) return this.x8Bufs[1];
    const b = this.x8Bufs[0];
    if (!(this.x8Ready & (1 << 1))) {
      const cols = this.inputCols, nb = cols / 32;
      if (cols % 32 !== 0) throw new Error(`product: compact adapter on ${cols} columns, no multiple of 32`);
      const quantize = this.fn("quantize_x8");
      for (let i = 0; i < this.n; i++) quantize(this.inputPtr + i * cols * 4, cols, b.qx + i * cols, b.dx + i * nb * 4, b.xs + i * nb * 4);
      this.x8Ready |= 1 << 1;
    }
    return b;
  }

  /** The base product's calls for rows [r0, r0+nr) on thread t, after bringing X into the form the kernel reads. */
  private baseWork(w: Matrix, y: number): (r0: number, nr: number, t: number) => KernelCall[] {
    const x = this.inputPtr, n = this.n, cols = w.cols;
    if (cols !== this.inputCols) throw new Error(`product: matrix has ${cols} columns, input has ${this.inputCols}`);
    const k = kernelsFor(w.type.id, "gemv");
    const bk = BATCH_KERNELS.get(w.type.id);
    const wp = (r0: number) => w.ptr + r0 * w.rowBytes;
    if (w.layout && !this.x8) throw new Error(`product: ${w.layout} weights need 8-bit activations`);
    if (this.x8 && k.gemvX8 && cols % 32 === 0) {
      const want = F16_SCALED_X8.has(w.type.id) ? 2 : K_BLOCK_X8.has(w.type.id) && cols % 256 === 0 ? 3 : 1;
      const b = this.x8Bufs[want - 1];
      const nb = cols / 32;
      if (!(this.x8Ready & (1 << want))) {
        const quantize = this.fn(want === 2 ? "quantize_x8_f16" : want === 3 ? "quantize_x8_k" : "quantize_x8");
        for (let i = 0; i < n; i++) quantize(x + i * cols * 4, cols, b.qx + i * cols, b.dx + i * nb * 4, b.xs + i * nb * 4);
        this.x8Ready |= 1 << want;
      }
      // one token: the single-token kernel (a batch kernel would repeat it to fill its tile of four)
      if (bk?.gemmX8 && n > 1) {
        // grouped Q4_0 rows: each group unpacked once per batch into the thread's scratch, then the plain kernel
        if (w.layout) return (r0, nr, t) => [{ fn: GEMM_Q4_0X4, args: [wp(r0), b.qx, b.dx, b.xs, y + r0 * 4, nr, cols, n, w.rows, this.scratch[t]] }];
        const name = bk.gemmX8;
        return (r0, nr) => [{ fn: name, args: [wp(r0), b.qx, b.dx, b.xs, y + r0 * 4, nr, cols, n, w.rows] }];
      }
      const name = gemvX8KernelOf(w, k.gemvX8)!;
      return (r0, nr) => perToken(n, (i) => ({ fn: name, args: [wp(r0), b.qx + i * cols, b.dx + i * nb * 4, b.xs + i * nb * 4, y + (i * w.rows + r0) * 4, nr, cols] }));
    }
    let xf = x;
    if (w.type.id === GgmlType.F16) {
      // a product with f16 weights sees x rounded to f16
      if (!this.haveF16) {
        this.fn("round_f16")(x, this.xh, n * cols);
        this.haveF16 = true;
      }
      xf = this.xh;
    }
    if (bk?.gemmF32 && n > 1) {
      const name = bk.gemmF32;
      return (r0, nr) => [{ fn: name, args: [wp(r0), xf, y + r0 * 4, nr, cols, n, w.rows] }];
    }
    const name = k.gemvF32;
    return (r0, nr, t) =>
      perToken(n, (i) => ({ fn: name, args: [wp(r0), xf + i * cols * 4, y + (i * w.rows + r0) * 4, nr, cols, ...(k.gemvF32Scratch ? [this.scratch[t]] : [])] }));
  }
}

function perToken(n: number, call: (i: number) => KernelCall): KernelCall[] {
  return Array.from({ length: n }, (_, i) => call(i));
}
