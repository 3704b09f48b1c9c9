// The wasm engine's model: weights in core memory, scratch buffers, and the per-token forward pass of the llama family.
import type { Core } from "../../../core/core.js";
import { kernelsFor } from "../../../core/kernels.js";
import { AdapterPrecision, EngineAdapter, loadAdapter, termsFor } from "./adapters.js";
import { BatchForward } from "./batch-forward.js";
import { EngineConfig, ModelSource, readConfig } from "./config.js";
import { KvCache } from "./kv-cache.js";
import { LoraTerm, Products } from "./products.js";
import { loadWeights, ModelWeights, WeightOptions } from "./weights.js";

type Fn = (...args: number[]) => number;

/** Activation buffers of a forward pass, one vector (or with a batch, one row per token) each, f32 in core memory. */
export interface Activations {
  x: number;
  xn: number;
  q: number;
  k: number;
  v: number;
  att: number;
  o: number;
  g: number;
  u: number;
  h: number;
}

/** Scratch of one single-token forward pass. */
interface Scratch extends Activations {
  logits: number;
  scores: number;
  scoresCap: number;
}

const NO_TERMS: readonly LoraTerm[] = [];

/** Adapter terms of an active set, per layer and projection. */
export interface ModelTerms {
  layers: { q: readonly LoraTerm[]; k: readonly LoraTerm[]; v: readonly LoraTerm[]; o: readonly LoraTerm[]; gate: readonly LoraTerm[]; up: readonly LoraTerm[]; down: readonly LoraTerm[] }[];
  output: readonly LoraTerm[];
}

function add(m: Map<string, number>, key: string, ms: number): void {
  m.set(key, (m.get(key) ?? 0) + ms);
}

export class EngineModel {
  readonly config: EngineConfig;
  readonly weights: ModelWeights;
  private readonly products: Products;
  private readonly s: Scratch;
  private readonly k: Record<string, Fn>;
  private readonly embdDequant: string;
  private readonly embdBlocks: number;
  private batch: BatchForward | undefined;
  private x8 = true;

  constructor(readonly core: Core, src: ModelSource, onProgress?: (p: number) => void, opts: WeightOptions = {}) {
    this.config = readConfig(src);
    const c = this.config;
    this.weights = loadWeights(core, src, c, onProgress, opts);
    const maxCols = Math.max(c.nEmbd, c.nFf, c.nHead * c.headDim);
    this.products = new Products(core, maxCols, 64);
    const a = core.arena;
    const f = (n: number) => a.alloc(n * 4);
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
    this.s = {
      x: f(c.nEmbd), xn: f(maxCols), q: f(qDim), k: f(kvDim), v: f(kvDim), att: f(qDim), o: f(c.nEmbd),
      g: f(c.nFf), u: f(c.nFf), h: f(c.nFf), logits: f(c.nVocab), scores: f(1024), scoresCap: 1024,
    };
    const names = ["rms_norm", "add_f32", "swiglu", "rope", "store_f16", "attention", "attention_flash", "argmax_f32"];
    this.k = Object.fromEntries(names.map((n) => [n, core.fn(n) as Fn]));
    const ek = kernelsFor(this.weights.tokenEmbd.type.id, "dequantize");
    this.embdDequant = ek.dequant;
    this.embdBlocks = c.nEmbd / ek.traits.blockSize;
  }

  /**
   * Attention as llama.cpp's CPU flash attention computes it (its default: f16 running sum of V), or as
   * a separate softmax then an f16 product with V (llama.cpp with flash attention off).
   */
  flashAttention = true;

  /** When set, forward() adds milliseconds per stage (products, adapters, attention, other) into it. */
  profile: Map<string, number> | undefined;

  /**
   * Quantize activations to 8 bits for quantized weights (llama.cpp's behaviour); false keeps f32, which needs
   * the model loaded with `repackQ4_0: false` when it has Q4_0 products (grouped rows have an 8-bit-x kernel only).
   */
  set activationsX8(on: boolean) {
    this.products.x8 = on;
    this.x8 = on;
  }

  /** How adapters loaded from now on keep their halves (see AdapterPrecision); "f32" by default. */
  adapterPrecision: AdapterPrecision = "f32";

  loadAdapter(src: ModelSource, opts: { precision?: AdapterPrecision } = {}): EngineAdapter {
    return loadAdapter(this.core, src, this.weights.byName, this.config.architecture, opts.precision ?? this.adapterPrecision);
  }

  /** Adapter terms for an active set, arranged per layer and projection for the forward pass. */
  terms(active: readonly { adapter: EngineAdapter; scale: number }[]): ModelTerms {
    const byName = termsFor(active);
    const get = (name: string) => byName.get(name) ?? NO_TERMS;
    const layers = this.weights.layers.map((_, l) => {
      const p = `blk.${l}.`;
      return {
        q: get(p + "attn_q.weight"), k: get(p + "attn_k.weight"), v: get(p + "attn_v.weight"), o: get(p + "attn_output.weight"),
        gate: get(p + "ffn_gate.weight"), up: get(p + "ffn_up.weight"), down: get(p + "ffn_down.weight"),
      };
    });
    return { layers, output: get("output.weight") };
  }

  newKvCache(nCtx: number): KvCache {
    const c = this.config;
    return new KvCache(this.core, c.nLayer, nCtx, c.nHeadKv * c.headDim);
  }

  /**
   * Runs one token at position `pos` (the cache must hold positions 0..pos-1), storing its K/V.
   * With `wantLogits`, leaves the next-token logits in the logits buffer and returns its pointer; else -1.
   */
  forward(token: number, pos: number, cache: KvCache, terms: ModelTerms, wantLogits: boolean): number {
    const c = this.config, w = this.weights, s = this.s, k = this.k, P = this.products;
    if (!Number.isInteger(token) || token < 0 || token >= c.nVocab) throw new RangeError(`token ${token} outside the vocabulary of ${c.nVocab}`);
    if (pos >= cache.nCtx) throw new RangeError(`context full: position ${pos} of ${cache.nCtx}`);
    const nKv = pos + 1;
    if (nKv > s.scoresCap) {
      this.core.arena.release(s.scores);
      s.scoresCap = Math.max(nKv, s.scoresCap * 2);
      s.scores = this.core.arena.alloc(s.scoresCap * 4);
    }
    const te = w.tokenEmbd;
    this.core.call(this.embdDequant, te.ptr + token * te.rowBytes, s.x, this.embdBlocks);
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
    const scale = Math.fround(1 / Math.fround(Math.sqrt(c.headDim)));
    const neox = c.ropeNeox ? 1 : 0;
    const prof = this.profile;
    const t0 = prof ? performance.now() : 0;
    P.profile = prof;
    for (let l = 0; l < c.nLayer; l++) {
      const L = w.layers[l];
      const T = terms.layers[l];
      k.rms_norm(s.x, L.attnNorm.ptr, s.xn, c.nEmbd, c.rmsEps);
      P.setInput(s.xn, c.nEmbd);
      P.gemvGroup([
        { w: L.wq, y: s.q, terms: T.q },
        { w: L.wk, y: s.k, terms: T.k },
        { w: L.wv, y: s.v, terms: T.v },
      ]);
      if (L.bq) k.add_f32(s.q, L.bq.ptr, s.q, qDim);
      if (L.bk) k.add_f32(s.k, L.bk.ptr, s.k, kvDim);
      if (L.bv) k.add_f32(s.v, L.bv.ptr, s.v, kvDim);
      k.rope(s.q, c.nHead, c.headDim, c.nRot, pos, c.ropeBase, c.ropeFreqScale, neox);
      k.rope(s.k, c.nHeadKv, c.headDim, c.nRot, pos, c.ropeBase, c.ropeFreqScale, neox);
      k.store_f16(s.k, cache.kRow(l, pos), kvDim);
      k.store_f16(s.v, cache.vRow(l, pos), kvDim);
      const ta = prof ? performance.now() : 0;
      if (this.flashAttention) k.attention_flash(s.q, cache.kRow(l, 0), cache.vRow(l, 0), s.att, c.nHead, c.nHeadKv, c.headDim, nKv, scale);
      else k.attention(s.q, cache.kRow(l, 0), cache.vRow(l, 0), s.att, s.scores, c.nHead, c.nHeadKv, c.headDim, nKv, scale);
      if (prof) add(prof, "attention", performance.now() - ta);
      P.setInput(s.att, qDim);
      P.gemv(L.wo, s.o, T.o);
      if (L.bo) k.add_f32(s.o, L.bo.ptr, s.o, c.nEmbd);
      k.add_f32(s.x, s.o, s.x, c.nEmbd);
      k.rms_norm(s.x, L.ffnNorm.ptr, s.xn, c.nEmbd, c.rmsEps);
      P.setInput(s.xn, c.nEmbd);
      P.gemvGroup([
        { w: L.gate, y: s.g, terms: T.gate },
        { w: L.up, y: s.u, terms: T.up },
      ]);
      k.swiglu(s.g, s.u, s.h, c.nFf);
      P.setInput(s.h, c.nFf);
      P.gemv(L.down, s.o, T.down);
      k.add_f32(s.x, s.o, s.x, c.nEmbd);
    }
    cache.length = Math.max(cache.length, pos + 1);
    if (wantLogits) {
      k.rms_norm(s.x, w.outputNorm.ptr, s.xn, c.nEmbd, c.rmsEps);
      P.setInput(s.xn, c.nEmbd);
      P.gemv(w.output, s.logits, terms.output);
    }
    if (prof) add(prof, "total", performance.now() - t0);
    return wantLogits ? s.logits : -1;
  }

  /** Most tokens one forwardBatch call takes (its scratch memory grows with it). */
  static readonly BATCH_TOKENS = 32;

  /**
   * Runs tokens at positions pos0, pos0+1, ... at once (at most BATCH_TOKENS; the cache must hold 0..pos0-1):
   * the same results as forward() per token, with each weight read once for the whole batch. With
   * `wantLogits`, leaves the last token's logits in the logits buffer and returns its pointer; else -1.
   */
  forwardBatch(tokens: readonly number[], pos0: number, cache: KvCache, terms: ModelTerms, wantLogits: boolean): number {
    this.batch ??= new BatchForward(this.core, this.config, this.weights, EngineModel.BATCH_TOKENS);
    this.batch.flashAttention = this.flashAttention;
    this.batch.x8 = this.x8;
    this.batch.run(tokens, pos0, cache, terms, wantLogits ? this.s.logits : undefined);
    return wantLogits ? this.s.logits : -1;
  }

  /** A copy of the logits left by the last forward pass. */
  logits(): Float32Array {
    return this.core.arena.f32(this.s.logits, this.config.nVocab).slice();
  }

  /** Index of the largest logit of the last forward pass (wasm argmax, no copy). */
  argmax(): number {
    return this.k.argmax_f32(this.s.logits, this.config.nVocab);
  }
}
