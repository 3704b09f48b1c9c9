// Batched forward pass of the engine (prompt evaluation): several consecutive tokens per call, weights read once per batch.
import type { Core, KernelCall } from "../../../core/core.js";
import { kernelsFor } from "../../../core/kernels.js";
import { BatchProducts } from "./batch-products.js";
import type { EngineConfig } from "./config.js";
import type { KvCache } from "./kv-cache.js";
import type { Activations, ModelTerms } from "./model.js";
import type { ModelWeights } from "./weights.js";

type Fn = (...args: number[]) => number;

/** Attention calls one worker slot takes at most (a call is 2 + 9 numbers). */
const MAX_ATTENTION_CALLS = 20;

/**
 * Runs the same steps as EngineModel.forward for a run of consecutive tokens: per layer RMSNorm per token,
 * the q/k/v, o, gate/up and down products for all tokens at once, RoPE per position, K/V into the cache,
 * then causal attention per token against the positions before it and its own. Each token's states equal
 * those of the per-token pass bit for bit.
 */
export class BatchForward {
  private readonly products: BatchProducts;
  /** Each buffer holds maxTokens rows, token-major. */
  private readonly s: Activations;
  private readonly k: Record<string, Fn>;
  private readonly embdDequant: string;
  private readonly embdBlocks: number;
  private scores: number;
  private scoresCap = 1024;

  /** As EngineModel.flashAttention. */
  flashAttention = true;

  constructor(private readonly core: Core, private readonly config: EngineConfig, private readonly weights: ModelWeights, readonly maxTokens: number) {
    const c = config;
    const maxCols = Math.max(c.nEmbd, c.nFf, c.nHead * c.headDim);
    this.products = new BatchProducts(core, maxCols, maxTokens);
    const f = (n: number) => core.arena.alloc(maxTokens * n * 4);
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
    this.s = { x: f(c.nEmbd), xn: f(maxCols), q: f(qDim), k: f(kvDim), v: f(kvDim), att: f(qDim), o: f(c.nEmbd), g: f(c.nFf), u: f(c.nFf), h: f(c.nFf) };
    this.scores = core.arena.alloc(this.scoresCap * 4);
    const names = ["rms_norm", "add_f32", "swiglu", "rope", "store_f16"];
    this.k = Object.fromEntries(names.map((n) => [n, core.fn(n) as Fn]));
    const ek = kernelsFor(weights.tokenEmbd.type.id, "dequantize");
    this.embdDequant = ek.dequant;
    this.embdBlocks = c.nEmbd / ek.traits.blockSize;
  }

  /** As EngineModel.activationsX8. */
  set x8(on: boolean) {
    this.products.x8 = on;
  }

  /** Releases the scratch memory. */
  dispose(): void {
    this.products.dispose();
    for (const p of Object.values(this.s)) this.core.arena.release(p);
    this.core.arena.release(this.scores);
  }

  /**
   * Runs tokens at positions pos0, pos0+1, ... (the cache must hold positions 0..pos0-1), storing their K/V.
   * With a `logits` pointer, writes the last token's next-token logits there.
   */
  run(tokens: readonly number[], pos0: number, cache: KvCache, terms: ModelTerms, logits: number | undefined): void {
    const c = this.config, w = this.weights, s = this.s, k = this.k, P = this.products;
    const n = tokens.length;
    if (n < 1 || n > this.maxTokens) throw new RangeError(`batch of ${n} tokens, at most ${this.maxTokens}`);
    for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
    if (pos0 + n > cache.nCtx) throw new RangeError(`context full: positions ${pos0}..${pos0 + n - 1} of ${cache.nCtx}`);
    const E = c.nEmbd, F = c.nFf;
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
    const row = (base: number, width: number, i: number) => base + i * width * 4;
    const te = w.tokenEmbd;
    for (let i = 0; i < n; i++) this.core.call(this.embdDequant, te.ptr + tokens[i] * te.rowBytes, row(s.x, E, i), this.embdBlocks);
    const neox = c.ropeNeox ? 1 : 0;
    for (let l = 0; l < c.nLayer; l++) {
      const L = w.layers[l];
      const T = terms.layers[l];
      for (let i = 0; i < n; i++) k.rms_norm(row(s.x, E, i), L.attnNorm.ptr, row(s.xn, E, i), E, c.rmsEps);
      P.setInput(s.xn, E, n);
      P.gemmGroup([
        { w: L.wq, y: s.q, terms: T.q },
        { w: L.wk, y: s.k, terms: T.k },
        { w: L.wv, y: s.v, terms: T.v },
      ]);
      for (let i = 0; i < n; i++) {
        const q = row(s.q, qDim, i), kk = row(s.k, kvDim, i), v = row(s.v, kvDim, i);
        if (L.bq) k.add_f32(q, L.bq.ptr, q, qDim);
        if (L.bk) k.add_f32(kk, L.bk.ptr, kk, kvDim);
        if (L.bv) k.add_f32(v, L.bv.ptr, v, kvDim);
        k.rope(q, c.nHead, c.headDim, c.nRot, pos0 + i, c.ropeBase, c.ropeFreqScale, neox);
        k.rope(kk, c.nHeadKv, c.headDim, c.nRot, pos0 + i, c.ropeBase, c.ropeFreqScale, neox);
      }
      // cache rows are position-major, so the batch's K (and V) rows go in with one call each
      k.store_f16(s.k, cache.kRow(l, pos0), n * kvDim);
      k.store_f16(s.v, cache.vRow(l, pos0), n * kvDim);
      this.attention(l, n, pos0, cache);
      P.setInput(s.att, qDim, n);
      P.gemm(L.wo, s.o, T.o);
      if (L.bo) for (let i = 0; i < n; i++) k.add_f32(row(s.o, E, i), L.bo.ptr, row(s.o, E, i), E);
      k.add_f32(s.x, s.o, s.x, n * E);
      for (let i = 0; i < n; i++) k.rms_norm(row(s.x, E, i), L.ffnNorm.ptr, row(s.xn, E, i), E, c.rmsEps);
      P.setInput(s.xn, E, n);
      P.gemmGroup([
        { w: L.gate, y: s.g, terms: T.gate },
        { w: L.up, y: s.u, terms: T.up },
      ]);
      k.swiglu(s.g, s.u, s.h, n * F);
      P.setInput(s.h, F, n);
      P.gemm(L.down, s.o, T.down);
      k.add_f32(s.x, s.o, s.x, n * E);
    }
    cache.length = Math.max(cache.length, pos0 + n);
    if (logits !== undefined) {
      k.rms_norm(row(s.x, E, n - 1), w.outputNorm.ptr, s.xn, E, c.rmsEps);
      P.setInput(s.xn, E, 1);
      P.gemm(w.output, logits, terms.output);
    }
  }

  /** Causal attention of each token against positions 0..pos0+i; with flash attention, tokens spread over the threads. */
  private attention(l: number, n: number, pos0: number, cache: KvCache): void {
    const c = this.config, s = this.s;
    const qDim = c.nHead * c.headDim;
    const scale = Math.fround(1 / Math.fround(Math.sqrt(c.headDim)));
    const kc = cache.kRow(l, 0), vc = cache.vRow(l, 0);
    if (!this.flashAttention) {
      const nKvMax = pos0 + n;
      if (nKvMax > this.scoresCap) {
        this.core.arena.release(this.scores);
        this.scoresCap = Math.max(nKvMax, this.scoresCap * 2);
        this.scores = this.core.arena.alloc(this.scoresCap * 4);
      }
      const attention = this.core.fn("attention") as Fn;
      for (let i = 0; i < n; i++) {
        attention(s.q + i * qDim * 4, kc, vc, s.att + i * qDim * 4, this.scores, c.nHead, c.nHeadKv, c.headDim, pos0 + i + 1, scale);
      }
      return;
    }
    const call = (i: number): KernelCall => ({
      fn: "attention_flash",
      args: [s.q + i * qDim * 4, kc, vc, s.att + i * qDim * 4, c.nHead, c.nHeadKv, c.headDim, pos0 + i + 1, scale],
    });
    const p = this.core.parallel;
    // bytes of K and V rows the batch reads: below the pool's threshold the hand-over costs more than it saves
    const kvBytes = n * (pos0 + (n + 1) / 2) * c.nHeadKv * c.headDim * 4;
    if (!p || p.threads < 2 || n < 2 || kvBytes < p.minParallelBytes) {
      for (let i = 0; i < n; i++) {
        const { fn, args } = call(i);
        this.core.call(fn, ...args);
      }
      return;
    }
    // token i to thread i mod threads: later tokens attend over more positions, so this evens the work out
    for (let i0 = 0; i0 < n; i0 += p.threads * MAX_ATTENTION_CALLS) {
      const parts: KernelCall[][] = Array.from({ length: p.threads }, () => []);
      for (let i = i0; i < Math.min(n, i0 + p.threads * MAX_ATTENTION_CALLS); i++) parts[(i - i0) % p.threads].push(call(i));
      p.run(parts.filter((x, t) => t === 0 || x.length > 0));
    }
  }
}
