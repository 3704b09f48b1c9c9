// Products of resident weights with n >= 1 rows of x: kernels from the type table, x brought into each form once per input, adapter terms on exactly their rows, rows split over the pool.
import { GgmlType } from "../gguf/ggml-types.js";
import { ACTIVATIONS, kernelsFor, productKernels, type ActivationForm, type ProductKernels } from "./kernels.js";
import { LORA_B_Q8, LORA_QUANTIZE_T, TERM_ENTRY_BYTES, loraTBytes, writeTermEntry, type LoraQ8Pair } from "./lora-layout.js";
import { CoreError, type KernelCall, type KernelHost, type Matrix, type ParallelRunner } from "./types.js";

/** Adapter halves in core memory: f32 A (rank x cols) and B (rows x rank), or the compact form alone. */
export type LoraHalves =
  | { a: Matrix; b: Matrix; q8?: undefined }
  /** Compact form (Q8_0 A on 8-bit x, t in 7 bits, int8 B rows). */
  | { q8: LoraQ8Pair; a?: undefined; b?: undefined };

/** One adapter term on a product: y += scale * B (A x). */
export type AdapterTerm = Readonly<LoraHalves & { rank: number; scale: number }>;

/** An adapter term on rows [row0, row0 + n) of the input. */
export interface TermRows {
  readonly term: AdapterTerm;
  readonly row0: number;
  readonly n: number;
}

/**
 * One product of the current input: y (n rows of w.rows f32) = X W^T, then its adapter terms, each on its own
 * rows, in list order (a row's terms are added in the order they are listed).
 */
export interface Product {
  readonly w: Matrix;
  readonly y: number;
  readonly terms?: readonly TermRows[];
}

/** Rows of one product as calls: rows [r0, r0+nr) on thread t. */
interface RowWork {
  readonly rows: number;
  /** Weight bytes read, times the passes the kernels make over them (one per four rows of x). */
  readonly work: number;
  make(r0: number, nr: number, t: number): KernelCall[];
}

const NO_TERMS: readonly TermRows[] = [];
const FORMS: readonly ActivationForm[] = ["f32", "f16", "x8", "x8h", "x8k"];
const F32_KERNELS = kernelsFor(GgmlType.F32).float;

/** Scratch bytes of one term's first half: t in f32 (rank values a row, rows padded to 16 values), then for compact terms each row's t in 7 bits. */
function termBytes(tr: TermRows): number {
  const f32 = tr.n * Math.ceil(tr.term.rank / 16) * 64;
  return tr.term.q8 ? f32 + tr.n * loraTBytes(tr.term.rank) : f32;
}

/**
 * Runs Y = X W^T + sum_i s_i (X_i A_i^T) B_i^T for n rows of x: each row's results equal those of the same row
 * run alone, bit for bit, whatever the other rows, the thread count or the grouping of products. The same input
 * feeds several products (q, k, v; gate, up): each of its forms is computed once per `setInput`.
 */
export class Products {
  /** Quantize x to 8 bits for weight types with 8-bit kernels (llama.cpp's behaviour); false keeps float x. */
  x8 = true;
  private readonly cols: number;
  private readonly formBufs = new Map<ActivationForm, number[]>();
  private ready = 0;
  private inputPtr = 0;
  private inputCols = 0;
  private n = 0;
  private t = 0;
  private tBytes = 0;
  /** Term tables of the fused batch kernels of one run, taken in turn from `tableOff` on. */
  private tables = 0;
  private tablesBytes = 0;
  private tableOff = 0;
  private readonly scratch: number[];
  /** The calls converting an input (one per row range), and their objects, kept from one input to the next. */
  private readonly convertCalls: KernelCall[] = [];
  private readonly convertCallPool: KernelCall[] = [];

  constructor(private readonly host: KernelHost, maxCols: number, readonly maxRows: number) {
    this.cols = Math.ceil(maxCols / 256) * 256;
    const threads = host.parallel?.threads ?? 1;
    this.scratch = Array.from({ length: threads }, () => host.arena.alloc(this.cols * 4));
  }

  /** Releases the scratch memory. */
  dispose(): void {
    const a = this.host.arena;
    for (const ps of this.formBufs.values()) for (const p of ps) a.release(p);
    this.formBufs.clear();
    for (const p of this.scratch) a.release(p);
    this.scratch.length = 0;
    if (this.t) a.release(this.t);
    this.t = 0;
    if (this.tables) a.release(this.tables);
    this.tables = 0;
  }

  /** Declares n rows of `cols` f32 at `ptr` (row after row) as the input of the next products. */
  setInput(ptr: number, cols: number, n = 1): void {
    if (!(n >= 1 && n <= this.maxRows)) throw new RangeError(`product input of ${n} rows, at most ${this.maxRows}`);
    if (cols > this.cols) throw new RangeError(`product input of ${cols} columns, at most ${this.cols}`);
    this.inputPtr = ptr;
    this.inputCols = cols;
    this.n = n;
    this.ready = 0;
  }

  /** Runs products of the current input; their row ranges go to the threads together (the pool is woken once). */
  run(products: readonly Product[]): void {
    this.reserveTerms(products);
    this.reserveTables(products.length);
    let off = this.t;
    const works: RowWork[] = [];
    for (const p of products) {
      const w = p.w;
      if (w.cols !== this.inputCols) throw new CoreError(`product: matrix has ${w.cols} columns, input has ${this.inputCols}`);
      const k = productKernels(kernelsFor(w.type.id, "product"), w.layout, this.x8, w.cols);
      const terms = p.terms ?? NO_TERMS;
      // first halves t = A x on each term's rows, here on the calling thread (they are small)
      const ts = terms.map((tr) => {
        const at = off;
        off += termBytes(tr);
        return this.firstHalf(tr, at, k.x);
      });
      works.push(this.rowWork(w, p.y, k, terms, ts));
    }
    this.dispatch(works);
  }

  /** The base product's calls and the terms' second halves for rows [r0, r0+nr) of W. */
  private rowWork(w: Matrix, y: number, k: ProductKernels, terms: readonly TermRows[], ts: readonly number[]): RowWork {
    const n = this.n, cols = w.cols, X = this.input(k.x), eight = ACTIVATIONS[k.x].eightBit;
    // one row of x: the grouped kernel takes the first term's B in its own row pass
    const fused = n === 1 && k.gemvLora !== undefined && terms.length > 0;
    // many rows: the batch kernel takes each row's first term in its own group pass
    const inBatch = n > 1 && k.gemm !== undefined && k.gemmLora !== undefined ? firstTerms(terms) : undefined;
    const scratch = this.scratch;
    return {
      rows: w.rows,
      work: w.rows * w.rowBytes * Math.ceil(n / 4),
      make: (r0, nr, t) => {
        const wp = w.ptr + r0 * w.rowBytes;
        const calls: KernelCall[] = [];
        if (n === 1) {
          const args = [wp, ...X, y + r0 * 4, nr, cols];
          if (k.gemvScratch) args.push(scratch[t]);
          if (fused) calls.push({ fn: k.gemvLora![terms[0].term.q8 ? "q8" : "f32"], args: [...args, ...this.secondHalfArgs(terms[0], ts[0], r0)] });
          else calls.push({ fn: k.gemv, args });
        } else if (k.gemm) {
          const args = [wp, ...X, y + r0 * 4, nr, cols, n, w.rows];
          if (k.gemmScratch) args.push(scratch[t]);
          if (inBatch) calls.push({ fn: k.gemmLora!, args: [...args, this.termTable(terms, ts, inBatch, r0)] });
          else calls.push({ fn: k.gemm, args });
        } else {
          for (let i = 0; i < n; i++) {
            const args = [wp, ...this.rowOf(X, eight, cols, i), y + (i * w.rows + r0) * 4, nr, cols];
            if (k.gemvScratch) args.push(scratch[t]);
            calls.push({ fn: k.gemv, args });
          }
        }
        for (let j = fused ? 1 : 0; j < terms.length; j++) {
          if (inBatch?.[j]) continue;
          const tr = terms[j];
          const [b, ...rest] = this.secondHalfArgs(tr, ts[j], r0);
          const yr = y + (tr.row0 * w.rows + r0) * 4;
          if (tr.term.q8) {
            const [meta, tq, rPad, s] = rest;
            calls.push({ fn: LORA_B_Q8, args: [b, meta, tq, loraTBytes(tr.term.rank), yr, nr, rPad, s, tr.n, w.rows] });
          } else {
            const [tp, rank, s] = rest;
            calls.push({ fn: F32_KERNELS.gemmAcc!, args: [b, tp, yr, nr, rank, tr.n, w.rows, s] });
          }
        }
        return calls;
      },
    };
  }

  /** The B half's arguments from row r0 on: f32 (b, t, rank, s), compact (b, meta, tq, rPad, s). */
  private secondHalfArgs(tr: TermRows, tp: number, r0: number): number[] {
    const { term } = tr;
    const q = term.q8;
    if (q) return [q.b + r0 * q.rPad, q.meta + r0 * 8, tp, q.rPad, term.scale];
    return [term.b.ptr + r0 * term.b.rowBytes, tp, term.b.cols, term.scale];
  }

  /**
   * t = A x for a term's rows into scratch at `at`; returns where its B half reads t. Compact A (Q8_0) reads
   * x in 8-bit blocks of 32: the base's own form when it is one, else x8; its t is then rounded to 7 bits.
   */
  private firstHalf(tr: TermRows, at: number, baseForm: ActivationForm): number {
    const { term, row0, n } = tr;
    const cols = this.inputCols;
    const q = term.q8;
    if (!q) {
      const a = term.a;
      this.host.fn(kernelsFor(a.type.id).float.gemm!)(a.ptr, this.inputPtr + row0 * cols * 4, at, a.rows, a.cols, n, a.rows);
      return at;
    }
    if (cols % 32 !== 0) throw new CoreError(`product: compact adapter on ${cols} columns, no multiple of 32`);
    const form: ActivationForm = ACTIVATIONS[baseForm].eightBit && ACTIVATIONS[baseForm].block === 32 ? baseForm : "x8";
    const xr = this.rowOf(this.input(form), true, cols, row0);
    const ak = kernelsFor(q.a.type.id).int8!;
    if (n === 1) this.host.fn(ak.gemv)(q.a.ptr, xr[0], xr[1], xr[2], at, q.rank, cols);
    else this.host.fn(ak.gemm!)(q.a.ptr, xr[0], xr[1], xr[2], at, q.rank, cols, n, q.rank);
    const tq = at + n * Math.ceil(q.rank / 16) * 64, tqBytes = loraTBytes(q.rank);
    const quantizeT = this.host.fn(LORA_QUANTIZE_T);
    for (let i = 0; i < n; i++) quantizeT(at + i * q.rank * 4, q.rank, q.rPad, tq + i * tqBytes);
    return tq;
  }

  /**
   * A term table for rows [r0, ...) of W: each row of x gets the term of `terms` marked in `inBatch` that
   * covers it (its first), with B from row r0 and the row's own t.
   */
  private termTable(terms: readonly TermRows[], ts: readonly number[], inBatch: readonly boolean[], r0: number): number {
    const n = this.n, table = this.tables + this.tableOff;
    this.tableOff += n * TERM_ENTRY_BYTES;
    if (this.tableOff > this.tablesBytes) throw new CoreError("product: more row ranges than term tables were reserved for");
    const view = new DataView(this.host.arena.memory.buffer);
    for (let i = 0; i < n; i++) writeTermEntry(view, table, i, undefined);
    terms.forEach((tr, j) => {
      if (!inBatch[j]) return;
      const { term } = tr;
      const q = term.q8;
      for (let i = tr.row0; i < tr.row0 + tr.n; i++) {
        const k = i - tr.row0;
        writeTermEntry(view, table, i, q
          ? { kind: "q8", b: q.b + r0 * q.rPad, meta: q.meta + r0 * 8, t: ts[j] + k * loraTBytes(term.rank), rPad: q.rPad, scale: term.scale }
          : { kind: "f32", b: term.b.ptr + r0 * term.b.rowBytes, t: ts[j] + k * term.b.cols * 4, rank: term.b.cols, scale: term.scale });
      }
    });
    return table;
  }

  /**
   * Room for the term tables of `products` products split into row ranges (one a thread, or up to
   * SHARED_CHUNKS a thread through a shared queue), one entry per row of x each.
   */
  private reserveTables(products: number): void {
    this.tableOff = 0;
    const p = this.host.parallel;
    const ranges = p ? p.threads * (p.runShared ? SHARED_CHUNKS : 1) : 1;
    const need = products * ranges * this.n * TERM_ENTRY_BYTES;
    if (need <= this.tablesBytes) return;
    if (this.tables) this.host.arena.release(this.tables);
    this.tables = this.host.arena.alloc(need);
    this.tablesBytes = need;
  }

  /** Grows the terms' scratch to what these products need. */
  private reserveTerms(products: readonly Product[]): void {
    let need = 0;
    for (const p of products) for (const tr of p.terms ?? NO_TERMS) need += termBytes(tr);
    if (need <= this.tBytes) return;
    if (this.t) this.host.arena.release(this.t);
    this.t = this.host.arena.alloc(need);
    this.tBytes = need;
  }

  /** The input in `form` (computed once per input): pointers to its first row, [x] or [qx, dx, xs]. */
  private input(form: ActivationForm): readonly number[] {
    if (form === "f32") return [this.inputPtr];
    const act = ACTIVATIONS[form];
    const bit = 1 << FORMS.indexOf(form);
    let bufs = this.formBufs.get(form);
    if (!bufs) {
      const a = this.host.arena, values = this.maxRows * this.cols;
      bufs = act.eightBit ? [a.alloc(values), a.alloc((values / 32) * 4), a.alloc((values / 32) * 4)] : [a.alloc(values * 4)];
      this.formBufs.set(form, bufs);
    }
    if (!(this.ready & bit)) {
      const values = this.n * this.inputCols;
      if (this.inputCols % act.block !== 0) throw new CoreError(`product: ${this.inputCols} columns is no multiple of ${act.block} (${form} x)`);
      // blocks never straddle rows, so all rows are converted at once into the row-after-row layout, or in row
      // ranges shared out over the pool when there are many (each value converted the same way)
      const p = this.host.parallel, ranges = p?.runShared && p.polls && values >= MIN_PARALLEL_CONVERT ? Math.min(this.n, 2 * p.threads) : 1;
      const per = Math.ceil(this.n / ranges), cols = this.inputCols;
      const calls = this.convertCalls;
      calls.length = 0;
      for (let r0 = 0; r0 < this.n; r0 += per) {
        const nv = Math.min(per, this.n - r0) * cols;
        const c = (this.convertCallPool[calls.length] ??= { fn: "", args: [] });
        c.fn = act.kernel!;
        c.args.length = 0;
        if (act.eightBit) {
          const [q, d, xs] = this.rowOf(bufs, true, cols, r0);
          c.args.push(this.inputPtr + 4 * r0 * cols, nv, q, d, xs);
        } else c.args.push(this.inputPtr + 4 * r0 * cols, bufs[0] + 4 * r0 * cols, nv);
        calls.push(c);
      }
      if (calls.length > 1) p!.runShared!(calls);
      else this.host.fn(calls[0].fn)(...calls[0].args);
      this.ready |= bit;
    }
    return bufs;
  }

  /** Pointers of row i of an input form. */
  private rowOf(X: readonly number[], eightBit: boolean, cols: number, i: number): number[] {
    if (!eightBit) return [X[0] + i * cols * 4];
    const s = (cols / 32) * 4;
    return [X[0] + i * cols, X[1] + i * s, X[2] + i * s];
  }

  /** Runs the products on this thread, or their row ranges over the pool when the work is large enough. */
  private dispatch(works: readonly RowWork[]): void {
    const p = this.host.parallel;
    const fits = (ws: readonly RowWork[]): boolean =>
      p !== undefined && p.threads >= 2 && ws.reduce((s, w) => s + w.work, 0) >= p.minParallelBytes && ws.every((w) => w.rows >= 2 * p.threads);
    if (fits(works)) return this.split(works, p!);
    // one at a time: each split over the threads when it is large enough on its own
    for (const w of works) {
      if (fits([w])) this.split([w], p!);
      else for (const c of w.make(0, w.rows, 0)) this.host.fn(c.fn)(...c.args);
    }
  }

  /**
   * Row ranges of every product over the threads: with a shared queue and one call per range, ranges of at
   * least 16 rows, about SHARED_CHUNKS per thread, each with its own scratch (any thread may take any range);
   * else one range per thread.
   */
  private split(works: readonly RowWork[], p: ParallelRunner): void {
    if (!p.runShared) return split(works, p);
    const calls: KernelCall[] = [];
    let chunk = 0;
    for (const w of works) {
      const per = Math.max(16, Math.ceil(w.rows / (p.threads * SHARED_CHUNKS) / 16) * 16);
      for (let r0 = 0; r0 < w.rows; r0 += per) {
        while (this.scratch.length <= chunk) this.scratch.push(this.host.arena.alloc(this.cols * 4));
        const range = w.make(r0, Math.min(per, w.rows - r0), chunk++);
        // a range of several calls (adapter terms after the base product) must keep their order: one range per thread
        if (range.length !== 1) return split(works, p);
        calls.push(range[0]);
      }
    }
    p.runShared(calls);
  }
}

/** Values of x below which its conversion (to 8-bit blocks or f16) stays on the calling thread; it is shared out only over polling threads (a round of its own). */
const MIN_PARALLEL_CONVERT = 1 << 15;

/** Row ranges per thread of a product split over a shared queue (more ranges balance threads of unequal speed). */
const SHARED_CHUNKS = 4;

/**
 * Which terms are the first of every row they cover (terms are added in list order, so these can be applied
 * right after the base product, in the batch kernel's pass); undefined when there are none.
 */
function firstTerms(terms: readonly TermRows[]): boolean[] | undefined {
  if (terms.length === 0) return undefined;
  const covered = new Set<number>();
  const first = terms.map((tr) => {
    let all = true;
    for (let i = tr.row0; i < tr.row0 + tr.n; i++) if (covered.has(i)) all = false;
    for (let i = tr.row0; i < tr.row0 + tr.n; i++) covered.add(i);
    return all;
  });
  return first;
}

/** Row ranges of every product to every thread at once; ranges start at multiples of 16 rows (whole groups, own cache lines). */
function split(works: readonly RowWork[], p: ParallelRunner): void {
  const parts: KernelCall[][] = Array.from({ length: p.threads }, () => []);
  for (const w of works) {
    const per = Math.ceil(w.rows / p.threads / 16) * 16;
    for (let t = 0, r0 = 0; t < p.threads && r0 < w.rows; t++, r0 += per) parts[t].push(...w.make(r0, Math.min(per, w.rows - r0), t));
  }
  p.run(parts.filter((x) => x.length > 0));
}
