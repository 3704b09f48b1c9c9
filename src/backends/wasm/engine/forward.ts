// The engine's one forward pass (llama family) over a batch of token rows from one or several sequences: one token is a batch of one.
import type { Core } from "../../../core/core.js";
import type { TermRows } from "../../../core/products.js";
import type { KernelCall } from "../../../core/types.js";
import { kernelsFor } from "../../../core/kernels.js";
import type { LoraTerm, ModelTerms } from "./adapters.js";
import type { EngineConfig } from "./config.js";
import type { KvCache } from "./kv-cache.js";
import type { RunState } from "./run-state.js";
import type { ModelWeights } from "./weights.js";

/** One sequence's part of a batch: tokens at consecutive positions from `pos0`, its own KV cache and adapter terms. */
export interface SequenceRows {
  readonly cache: KvCache;
  readonly terms: ModelTerms;
  readonly tokens: readonly number[];
  /** Position of the first token; the cache holds positions 0..pos0-1. */
  readonly pos0: number;
  /** Leave the next-token logits after its last token. */
  readonly logits: boolean;
}

export interface ForwardOptions {
  /** llama.cpp's CPU flash attention (f16 running sum of V); false: softmax, then an f16 product with V. */
  readonly flashAttention: boolean;
}

type Projection = "q" | "k" | "v" | "o" | "gate" | "up" | "down";

/**
 * Runs the sequences' tokens through the model: every row's states and logits equal those of its sequence
 * evaluated alone, token by token, bit for bit. Base products run once for all rows, each adapter's halves
 * on the rows that use it, attention per row over its own sequence's cache. Returns, per sequence, the row
 * of `state.logits` holding its next-token logits (-1 when it asked for none).
 */
export function forward(core: Core, c: EngineConfig, w: ModelWeights, s: RunState, seqs: readonly SequenceRows[], opts: ForwardOptions): number[] {
  const starts: number[] = [];
  let n = 0;
  for (const q of seqs) {
    if (q.tokens.length < 1) throw new RangeError("a sequence of a batch has no tokens");
    for (const t of q.tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
    if (q.pos0 + q.tokens.length > q.cache.nCtx) throw new RangeError(`context full: positions ${q.pos0}..${q.pos0 + q.tokens.length - 1} of ${q.cache.nCtx}`);
    starts.push(n);
    n += q.tokens.length;
  }
  if (n < 1 || n > s.maxRows) throw new RangeError(`batch of ${n} tokens, at most ${s.maxRows}`);
  const a = s.act, P = s.products;
  const E = c.nEmbd, F = c.nFf;
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const row = (base: number, width: number, i: number) => base + i * width * 4;
  const rmsNorm = core.fn("rms_norm"), add = core.fn("add_f32"), rope = core.fn("rope"), storeF16 = core.fn("store_f16");
  const neox = c.ropeNeox ? 1 : 0;
  // each row's position
  const pos = new Array<number>(n);
  seqs.forEach((q, k) => q.tokens.forEach((_, i) => (pos[starts[k] + i] = q.pos0 + i)));
  const parts = seqs.map((q) => ({ terms: q.terms, n: q.tokens.length }));
  const runs = (pick: (t: ModelTerms) => readonly LoraTerm[]) => termRows(parts, starts, pick);

  const te = w.tokenEmbd;
  const embd = core.fn(kernelsFor(te.type.id, "dequantize").dequant), embdBlocks = E / te.type.blockSize;
  seqs.forEach((q, k) => q.tokens.forEach((t, i) => embd(te.ptr + t * te.rowBytes, row(a.x, E, starts[k] + i), embdBlocks)));

  for (let l = 0; l < c.nLayer; l++) {
    const L = w.layers[l];
    const layer = (p: Projection) => runs((t) => t.layers[l][p]);
    for (let i = 0; i < n; i++) rmsNorm(row(a.x, E, i), L.attnNorm.ptr, row(a.xn, E, i), E, c.rmsEps);
    P.setInput(a.xn, E, n);
    P.run([
      { w: L.wq, y: a.q, terms: layer("q") },
      { w: L.wk, y: a.k, terms: layer("k") },
      { w: L.wv, y: a.v, terms: layer("v") },
    ]);
    for (let i = 0; i < n; i++) {
      const q = row(a.q, qDim, i), k = row(a.k, kvDim, i), v = row(a.v, kvDim, i);
      if (L.bq) add(q, L.bq.ptr, q, qDim);
      if (L.bk) add(k, L.bk.ptr, k, kvDim);
      if (L.bv) add(v, L.bv.ptr, v, kvDim);
      rope(q, c.nHead, c.headDim, c.ropeDims, pos[i], c.ropeBase, c.ropeFreqScale, neox);
      rope(k, c.nHeadKv, c.headDim, c.ropeDims, pos[i], c.ropeBase, c.ropeFreqScale, neox);
    }
    // a sequence's rows are consecutive positions of its cache: its K (and V) rows go in with one call each
    seqs.forEach((q, k) => {
      const nr = q.tokens.length;
      storeF16(row(a.k, kvDim, starts[k]), q.cache.kRow(l, q.pos0), nr * kvDim);
      storeF16(row(a.v, kvDim, starts[k]), q.cache.vRow(l, q.pos0), nr * kvDim);
    });
    attention(core, c, s, seqs, starts, pos, l, opts.flashAttention);
    P.setInput(a.att, qDim, n);
    P.run([{ w: L.wo, y: a.o, terms: layer("o") }]);
    if (L.bo) for (let i = 0; i < n; i++) add(row(a.o, E, i), L.bo.ptr, row(a.o, E, i), E);
    add(a.x, a.o, a.x, n * E);
    for (let i = 0; i < n; i++) rmsNorm(row(a.x, E, i), L.ffnNorm.ptr, row(a.xn, E, i), E, c.rmsEps);
    P.setInput(a.xn, E, n);
    P.run([
      { w: L.gate, y: a.g, terms: layer("gate") },
      { w: L.up, y: a.u, terms: layer("up") },
    ]);
    core.fn("swiglu")(a.g, a.u, a.h, n * F);
    P.setInput(a.h, F, n);
    P.run([{ w: L.down, y: a.o, terms: layer("down") }]);
    add(a.x, a.o, a.x, n * E);
  }
  for (const q of seqs) q.cache.length = Math.max(q.cache.length, q.pos0 + q.tokens.length);

  // logits for the last row of each sequence that asks for them, one logits row each
  const out: number[] = [];
  const wanting: { terms: ModelTerms; n: number }[] = [], wantStarts: number[] = [];
  seqs.forEach((q, k) => {
    if (!q.logits) return out.push(-1);
    rmsNorm(row(a.x, E, starts[k] + q.tokens.length - 1), w.outputNorm.ptr, row(a.xn, E, wanting.length), E, c.rmsEps);
    out.push(wanting.length);
    wantStarts.push(wanting.length);
    wanting.push({ terms: q.terms, n: 1 });
  });
  if (wanting.length) {
    s.reserveLogits(wanting.length);
    P.setInput(a.xn, E, wanting.length);
    P.run([{ w: w.output, y: s.logits, terms: termRows(wanting, wantStarts, (t) => t.output) }]);
  }
  return out;
}

/** Same adapter pair at the same scale (terms of different sequences with one adapter share their halves). */
function sameTerm(x: LoraTerm, y: LoraTerm): boolean {
  return x.scale === y.scale && x.a === y.a && x.q8 === y.q8;
}

/**
 * The terms of one product for the batch's rows: the k-th term of every sequence (its k-th adapter), k = 0, 1, ...,
 * so each row gets its own terms in its own order; neighbouring sequences with the same term share one entry.
 */
function termRows(seqs: readonly { terms: ModelTerms; n: number }[], starts: readonly number[], pick: (t: ModelTerms) => readonly LoraTerm[]): TermRows[] {
  if (seqs.length === 1) {
    const n = seqs[0].n;
    return pick(seqs[0].terms).map((term) => ({ term, row0: 0, n }));
  }
  const out: TermRows[] = [];
  for (let k = 0; ; k++) {
    const slot = out.length;
    let any = false;
    seqs.forEach((q, i) => {
      const list = pick(q.terms);
      if (k >= list.length) return;
      any = true;
      const term = list[k], n = q.n, prev = out[out.length - 1];
      if (out.length > slot && sameTerm(prev.term, term) && prev.row0 + prev.n === starts[i]) out[out.length - 1] = { term: prev.term, row0: prev.row0, n: prev.n + n };
      else out.push({ term, row0: starts[i], n });
    });
    if (!any) return out;
  }
}

/** Causal attention of each row against its own sequence's positions 0..pos; with flash attention, rows spread over the threads. */
function attention(core: Core, c: EngineConfig, s: RunState, seqs: readonly SequenceRows[], starts: readonly number[], pos: readonly number[], l: number, flash: boolean): void {
  const a = s.act;
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const scale = Math.fround(1 / Math.fround(Math.sqrt(c.headDim)));
  const calls: KernelCall[] = [];
  let kvBytes = 0;
  if (!flash) s.reserveScores(Math.max(...pos) + 1);
  seqs.forEach((q, k) => {
    const kc = q.cache.kRow(l, 0), vc = q.cache.vRow(l, 0);
    for (let j = 0; j < q.tokens.length; j++) {
      const i = starts[k] + j, nKv = pos[i] + 1;
      kvBytes += nKv * kvDim * 4;
      if (flash) calls.push({ fn: "attention_flash", args: [a.q + i * qDim * 4, kc, vc, a.att + i * qDim * 4, c.nHead, c.nHeadKv, c.headDim, nKv, scale] });
      else calls.push({ fn: "attention", args: [a.q + i * qDim * 4, kc, vc, a.att + i * qDim * 4, s.scores, c.nHead, c.nHeadKv, c.headDim, nKv, scale] });
    }
  });
  const p = core.parallel;
  // bytes of K and V rows read: below the pool's threshold the hand-over costs more than it saves
  if (!flash || !p || p.threads < 2 || calls.length < 2 || kvBytes < p.minParallelBytes) {
    for (const call of calls) core.fn(call.fn)(...call.args);
    return;
  }
  // row i to thread i mod threads: later rows of a sequence attend over more positions, so this evens the work out
  const parts: KernelCall[][] = Array.from({ length: p.threads }, () => []);
  calls.forEach((call, i) => parts[i % p.threads].push(call));
  p.run(parts.filter((x) => x.length > 0));
}
