// Matrix-vector products over resident weights for the engine: the core's GEMV kernels on pointers, x quantized once per input, adapters fused per row range.
import type { Core, KernelCall, Matrix, ParallelRunner } from "../../../core/core.js";
import { kernelsFor } from "../../../core/kernels.js";
import { loraTBytes } from "../../../core/lora-q8.js";
import type { LoraHalves } from "./adapters.js";
import { GgmlType } from "../../../gguf/ggml-types.js";
import { gemvX8KernelOf, GEMV_Q4_0X4, GEMV_Q4_0X4_LORA } from "../../../core/repack.js";

/**
 * One adapter term on a product: y += scale * B (A x); A is r x cols, B rows x r, both F32 in core memory,
 * or only the compact halves (`q8`: A Q8_0 on 8-bit x, t in 7 bits, B int8 rows).
 */
export type LoraTerm = Readonly<LoraHalves & { rank: number; scale: number }>;

/** Scratch bytes of one term: t in f32 (padded to 16 values), then for compact terms t's quantized block. */
function termBytes(term: LoraTerm): number {
  const f32 = Math.ceil(term.rank / 16) * 64;
  return term.q8 ? f32 + loraTBytes(term.q8.rank) : f32;
}

type Fn = (...args: number[]) => unknown;

/** Calls one worker slot takes at most (its slot holds 256 numbers; a call is 2 + up to 7). */
const MAX_CALLS_PER_PART = 24;

/** Weight types whose products llama.cpp runs against x in 8-bit blocks of 32 with f16 scales. */
export const F16_SCALED_X8 = new Set<number>([GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q8_0]);
/** Weight types whose products llama.cpp runs against x in 8-bit blocks of 256 with an f32 scale. */
export const K_BLOCK_X8 = new Set<number>([GgmlType.Q4_K, GgmlType.Q6_K]);

/**
 * Runs y = W x + sum s_i B_i (A_i x) with x and y already in core memory. The same input feeds several
 * products (q, k, v; gate, up): its 8-bit and f16 forms are computed once per `setInput`.
 */
export class Products {
  /** 8-bit forms of the input: blocks of 32 with f32 scales, with f16 scales, blocks of 256. */
  private readonly x8Bufs: { qx: number; dx: number; xs: number }[];
  private readonly xh: number;
  private t: number;
  private tBytes: number;
  private readonly scratch: number[];
  private inputPtr = -1;
  private inputCols = 0;
  /** Bit s set: the input's 8-bit form s (1: blocks of 32, f32 scales; 2: f16 scales; 3: blocks of 256) is ready. */
  private x8Ready = 0;
  private haveF16 = false;
  private readonly fns = new Map<string, Fn>();
  /** When set, gemv() adds milliseconds per part (x quantization, base rows, adapter A and fused rows). */
  profile: Map<string, number> | undefined;

  /** Quantize x to 8 bits for weight types with an integer kernel (as llama.cpp does); false keeps f32 x. */
  x8 = true;

  constructor(private readonly core: Core, maxCols: number, maxRank: number) {
    const a = core.arena;
    const cols = Math.ceil(maxCols / 256) * 256;
    this.x8Bufs = [0, 1, 2].map(() => ({ qx: a.alloc(cols), dx: a.alloc((cols / 32) * 4), xs: a.alloc((cols / 32) * 4) }));
    this.xh = a.alloc(cols * 4);
    this.tBytes = Math.max(64, maxRank) * 4 * 8;
    this.t = a.alloc(this.tBytes);
    const threads = core.parallel?.threads ?? 1;
    this.scratch = Array.from({ length: threads }, () => a.alloc(cols * 4));
  }

  private fn(name: string): Fn {
    let f = this.fns.get(name);
    if (!f) {
      f = this.core.fn(name) as Fn;
      this.fns.set(name, f);
    }
    return f;
  }

  /** Declares the vector at `ptr` (cols f32) as the input of the next products. */
  setInput(ptr: number, cols: number): void {
    this.inputPtr = ptr;
    this.inputCols = cols;
    this.x8Ready = 0;
    this.haveF16 = false;
  }

  /** y = W x (+ adapter terms) for the current input. */
  gemv(w: Matrix, y: number, terms: readonly LoraTerm[] = []): void {
    this.gemvGroup([{ w, y, terms }]);
  }

  /**
   * Several products of the current input (q, k, v; gate, up) in one pass over the threads: each thread
   * gets its row range of every product, so the pool is woken once for the group.
   */
  gemvGroup(items: readonly { w: Matrix; y: number; terms?: readonly LoraTerm[] }[]): void {
    const prof = this.profile;
    let t0 = prof ? performance.now() : 0;
    const lap = (key: string) => {
      if (!prof) return;
      const t = performance.now();
      prof.set(key, (prof.get(key) ?? 0) + t - t0);
      t0 = t;
    };
    let withTerms = false;
    const need = items.reduce((s, it) => s + (it.terms ?? []).reduce((a, term) => a + termBytes(term), 0), 0);
    if (need > this.tBytes) {
      this.core.arena.release(this.t);
      this.tBytes = need;
      this.t = this.core.arena.alloc(need);
    }
    let off = this.t;
    const makers: { rows: number; bytes: number; calls: number; make: (r0: number, n: number, t: number) => KernelCall[] }[] = [];
    for (const it of items) {
      const base = this.baseCall(it.w, it.y);
      lap("x quantize, set-up");
      // first halves of the adapter terms: t_i = A_i x (small, on this thread)
      const terms = it.terms ?? [];
      const tps: number[] = [];
      for (const term of terms) {
        const q = term.q8;
        if (q) {
          // t = A x on the 8-bit form of x, then t to 7-bit integers for the B rows
          const xb = this.x8Blocks32();
          const tq = off + Math.ceil(q.rank / 16) * 64;
          this.fn("gemv_q8_0_q8")(q.a.ptr, xb.qx, xb.dx, xb.xs, off, q.rank, q.a.cols);
          this.fn("lora_quantize_t")(off, q.rank, q.rPad, tq);
          tps.push(tq);
        } else {
          this.fn("gemv_f32")(term.a.ptr, this.inputPtr, off, term.a.rows, term.a.cols);
          tps.push(off);
        }
        off += termBytes(term);
      }
      if (terms.length) {
        withTerms = true;
        lap("adapter A x");
      }
      const y = it.y;
      makers.push({
        rows: it.w.rows,
        bytes: it.w.rows * it.w.rowBytes,
        calls: 1 + terms.length,
        make: (r0, n, t) => {
          // the core's fused adapter product: W rows, then y += s B t on the same rows; the grouped Q4_0
          // kernel takes the first adapter's B rows in its own pass, right after each group's weights
          const out = [base(r0, n, t)];
          terms.forEach((term, i) => {
            const q = term.q8;
            const bt = q ? [q.b + r0 * q.rPad, q.meta + r0 * 8, tps[i]] : [term.b.ptr + r0 * term.b.rowBytes, tps[i]];
            const rs = [q ? q.rPad : term.b.cols, term.scale];
            if (i === 0 && out[0].fn === GEMV_Q4_0X4) out[0] = { fn: GEMV_Q4_0X4_LORA[q ? "q8" : "f32"], args: [...out[0].args, ...bt, ...rs] };
            else out.push({ fn: q ? "lora_b_q8_acc" : "gemv_f32_acc", args: [...bt, y + r0 * 4, n, ...rs] });
          });
          return out;
        },
      });
    }
    const label = withTerms ? "products (with adapter B)" : "products";
    const p = this.core.parallel;
    const fits = (ms: typeof makers) =>
      !!p && p.threads >= 2 && ms.reduce((x, m) => x + m.bytes, 0) >= p.minParallelBytes &&
      ms.every((m) => m.rows >= 2 * p.threads) && ms.reduce((x, m) => x + m.calls, 0) <= MAX_CALLS_PER_PART;
    if (fits(makers)) this.split(makers, p!);
    else {
      // one at a time: each split over the threads when it is large enough on its own
      for (const m of makers) {
        if (fits([m])) this.split([m], p!);
        else for (const c of m.make(0, m.rows, 0)) this.fn(c.fn)(...c.args);
      }
    }
    lap(label);
  }

  /** Runs the products' row ranges on all threads at once. */
  private split(makers: readonly { rows: number; make: (r0: number, n: number, t: number) => KernelCall[] }[], p: ParallelRunner): void {
    const parts: KernelCall[][] = Array.from({ length: p.threads }, () => []);
    for (const m of makers) {
      // row ranges aligned to 16 rows keep each thread's output on its own cache lines
      const per = Math.ceil(m.rows / p.threads / 16) * 16;
      for (let t = 0, r0 = 0; t < p.threads && r0 < m.rows; t++, r0 += per) parts[t].push(...m.make(r0, Math.min(per, m.rows - r0), t));
    }
    p.run(parts.filter((x) => x.length > 0));
  }

  /**
   * The input in 8-bit blocks of 32 with one scale per block (what the Q8_0 kernel reads): the base's own
   * form when it made one, else computed here (bases on f32 x, and K-quants, whose blocks are 256).
   */
  private x8Blocks32(): { qx: number; dx: number; xs: number } {
    if (this.x8Ready & (1 << 2)) return this.x8Bufs[1];
    if (!(this.x8Ready & (1 << 1))) {
      if (this.inputCols % 32 !== 0) throw new Error(`product: compact adapter on ${this.inputCols} columns, no multiple of 32`);
      const b = this.x8Bufs[0];
      this.fn("quantize_x8")(this.inputPtr, this.inputCols, b.qx, b.dx, b.xs);
      this.x8Ready |= 1 << 1;
    }
    return this.x8Bufs[0];
  }

  /** The base product's call for rows [r0, r0+n) on thread t, after bringing x into the form the kernel reads. */
  private baseCall(w: Matrix, y: number): (r0: number, n: number, t: number) => KernelCall {
    const x = this.inputPtr;
    if (w.cols !== this.inputCols) throw new Error(`product: matrix has ${w.cols} columns, input has ${this.inputCols}`);
    const k = kernelsFor(w.type.id, "gemv");
    const wp = (r0: number) => w.ptr + r0 * w.rowBytes;
    if (w.layout && !this.x8) throw new Error(`product: ${w.layout} weights need 8-bit activations`);
    if (this.x8 && k.gemvX8 && w.cols % 32 === 0) {
      // ggml's 32-value activation blocks (for Q4_0, Q4_1, Q8_0) keep their scale in f16,
      // and K-quants see x in blocks of 256 with one f32 scale
      const want = F16_SCALED_X8.has(w.type.id) ? 2 : K_BLOCK_X8.has(w.type.id) && w.cols % 256 === 0 ? 3 : 1;
      const b = this.x8Bufs[want - 1];
      if (!(this.x8Ready & (1 << want))) {
        this.fn(want === 2 ? "quantize_x8_f16" : want === 3 ? "quantize_x8_k" : "quantize_x8")(x, w.cols, b.qx, b.dx, b.xs);
        this.x8Ready |= 1 << want;
      }
      // grouped Q4_0 rows: row ranges start at multiples of 16 (split) or 0, so on a group of four
      const name = gemvX8KernelOf(w, k.gemvX8)!;
      return (r0, n) => ({ fn: name, args: [wp(r0), b.qx, b.dx, b.xs, y + r0 * 4, n, w.cols] });
    }
    if (w.type.id === GgmlType.F16) {
      // a product with f16 weights sees x rounded to f16
      if (!this.haveF16) {
        this.fn("round_f16")(x, this.xh, w.cols);
        this.haveF16 = true;
      }
      return (r0, n) => ({ fn: k.gemvF32, args: [wp(r0), this.xh, y + r0 * 4, n, w.cols] });
    }
    if (k.gemvF32Scratch) return (r0, n, t) => ({ fn: k.gemvF32, args: [wp(r0), x, y + r0 * 4, n, w.cols, this.scratch[t]] });
    return (r0, n) => ({ fn: k.gemvF32, args: [wp(r0), x, y + r0 * 4, n, w.cols] });
  }
}
