// The training engine: forward pass through the frozen base and the adapter in the wasm core, masked cross-entropy, and the backward pass to A and B (dX = dY W through the base's own blocks).
import { GgmlType } from "../../gguf/ggml-types.js";
import { Products, gemmTransposed, kernelsFor, transposedScratchBytes, type Core, type Matrix, type Product } from "../../core/index.js";
import { TARGETS, type Target } from "../reference/lora.js";
import type { TrainSequence } from "../reference/model.js";
import { f32Matrix, type TrainableAdapter, type TrainPair } from "./adapter.js";
import { readTokenRows, type FrozenBase } from "./base.js";
import * as K from "./kernels.js";
import * as ops from "./ops.js";

export interface EngineOptions {
  /** Most tokens a sequence may have (the forward pass reads at most maxTokens - 1 of them). */
  readonly maxTokens: number;
  /** Base products on 8-bit x where the weight type has such kernels, as llama.cpp runs them (default false: f32 x). */
  readonly x8?: boolean;
  /** Keep only each layer's input and recompute the rest of its activations in the backward pass (less memory, about one more forward). */
  readonly recompute?: boolean;
}

/** Activation buffers of one layer (pointers to f32 arrays of maxT rows). */
interface LayerBuffers {
  attnIn: number; attnInv: number; q: number; k: number; v: number; probs: number; att: number;
  xMid: number; ffnIn: number; ffnInv: number; g: number; up: number; h: number;
  /** A x per adapted target. */
  u: Partial<Record<Target, number>>;
}

const F32_GEMM_ACC = kernelsFor(GgmlType.F32).float.gemmAcc!;

export class TrainingEngine {
  readonly maxT: number;
  private readonly products: Products;
  private readonly xs: number[];
  private readonly layers: LayerBuffers[];
  private readonly tmpOut: number;
  private readonly embRows: number;
  private readonly logits: number;
  private readonly ceTargets: number;
  private readonly ceWeights: number;
  private readonly ceLosses: number;
  private readonly dpScratch: number[];
  /** Norm weights copied into the core (RMSNorm runs there). */
  private readonly norms = new Map<Float32Array, number>();
  private readonly outIn: number;
  private readonly outInv: number;
  private readonly grad: Record<"dx" | "dMid" | "dOut" | "dh" | "dg" | "dup" | "dFfnIn" | "dAtt" | "dq" | "dk" | "dv" | "dAttnIn" | "du" | "duT" | "sdyT", number>;
  private readonly scratch: number[];
  /** RoPE's cos and sin tables (f64, half values a position) in the core. */
  private readonly rope: { cos: number; sin: number; half: number };
  private readonly allocated: number[] = [];
  /** Bytes of activation, gradient and scratch buffers this engine holds in the core. */
  readonly activationBytes: number;

  constructor(readonly core: Core, readonly base: FrozenBase, readonly adapter: TrainableAdapter, readonly options: EngineOptions) {
    const c = base.config;
    const T = (this.maxT = options.maxTokens - 1);
    if (!(T >= 1)) throw new RangeError(`maxTokens must be at least 2, got ${options.maxTokens}`);
    const E = c.nEmbd, F = c.nFf, Q = c.nHead * c.headDim, KV = c.nHeadKv * c.headDim, V = c.nVocab;
    const maxRank = Math.max(...adapter.pairs.map((p) => p.rank));
    const wide = Math.max(E, F, Q);
    let bytes = 0;
    const alloc = (values: number) => {
      const p = core.arena.alloc(values * 4);
      this.allocated.push(p);
      bytes += values * 4;
      return p;
    };
    const layerBuffers = (l: number): LayerBuffers => {
      const u: LayerBuffers["u"] = {};
      for (const t of TARGETS) {
        const p = adapter.pair(l, t);
        if (p) u[t] = alloc(T * p.rank);
      }
      return {
        attnIn: alloc(T * E), attnInv: alloc(T), q: alloc(T * Q), k: alloc(T * KV), v: alloc(T * KV), probs: alloc(c.nHead * T * T), att: alloc(T * Q),
        xMid: alloc(T * E), ffnIn: alloc(T * E), ffnInv: alloc(T), g: alloc(T * F), up: alloc(T * F), h: alloc(T * F), u,
      };
    };
    this.xs = Array.from({ length: c.nLayer + 1 }, () => alloc(T * E));
    if (options.recompute) {
      // one set of buffers, shaped for every layer's adapted targets
      const shared = layerBuffers(0);
      for (const t of TARGETS) if (!shared.u[t] && adapter.pairs.some((p) => p.target === t)) shared.u[t] = alloc(T * maxRank);
      this.layers = Array.from({ length: c.nLayer }, () => shared);
    } else {
      this.layers = Array.from({ length: c.nLayer }, (_, l) => layerBuffers(l));
    }
    // the batch's token rows when the embedding stays in the file
    const emb = base.tokenEmbd;
    this.embRows = "fd" in emb ? alloc(Math.ceil((T * emb.rowBytes) / 4)) : 0;
    this.tmpOut = alloc(T * wide);
    this.outIn = alloc(T * E);
    this.outInv = alloc(T);
    this.logits = alloc(T * V);
    this.ceTargets = alloc(T);
    this.ceWeights = alloc(T);
    this.ceLosses = alloc(2 * T);
    this.grad = {
      dx: alloc(T * E), dMid: alloc(T * E), dOut: alloc(T * E), dh: alloc(T * F), dg: alloc(T * F), dup: alloc(T * F), dFfnIn: alloc(T * E),
      dAtt: alloc(T * Q), dq: alloc(T * Q), dk: alloc(T * KV), dv: alloc(T * KV), dAttnIn: alloc(T * E),
      du: alloc(T * maxRank), duT: alloc(T * maxRank), sdyT: alloc(T * wide),
    };
    // two scratch blocks a thread: the pool's shared queue then splits transposed products into two ranges a thread
    const threads = core.parallel ? 2 * core.parallel.threads : 1;
    this.scratch = Array.from({ length: threads }, () => alloc(transposedScratchBytes(Math.max(wide, T)) / 4));
    this.dpScratch = Array.from({ length: K.rangeScratchCount(core) }, () => alloc(T));
    for (const w of [base.outputNorm, ...base.layers.flatMap((L) => [L.attnNorm, L.ffnNorm])]) {
      const p = core.arena.put(w);
      this.allocated.push(p);
      this.norms.set(w, p);
    }
    const table = ops.ropeTable(T, c.ropeDims, c.ropeBase, c.ropeFreqScale);
    const cos = alloc(2 * table.cos.length), sin = alloc(2 * table.sin.length);
    new Float64Array(core.arena.memory.buffer, cos, table.cos.length).set(table.cos);
    new Float64Array(core.arena.memory.buffer, sin, table.sin.length).set(table.sin);
    this.rope = { cos, sin, half: table.half };
    this.activationBytes = bytes;
    this.products = new Products(core, Math.max(wide, maxRank), T);
    this.products.x8 = options.x8 ?? false;
  }

  dispose(): void {
    this.products.dispose();
    for (const p of this.allocated) this.core.arena.release(p);
    this.allocated.length = 0;
  }

  /** The arena copy of a norm's weights. */
  private norm(w: Float32Array): number {
    return this.norms.get(w)!;
  }

  /** A fresh f32 view (views die when the core's memory grows). */
  private v(ptr: number, n: number): Float32Array {
    return this.core.arena.f32(ptr, n);
  }

  /** Mean masked loss of the batch (forward only). */
  loss(batch: readonly TrainSequence[]): { loss: number; tokens: number } {
    return this.run(batch, false);
  }

  /** Mean masked loss and its gradients, left in the adapter's gradient buffers (zeroed first). */
  lossAndGradients(batch: readonly TrainSequence[]): { loss: number; tokens: number } {
    this.adapter.zeroGradients();
    return this.run(batch, true);
  }

  private run(batch: readonly TrainSequence[], backward: boolean): { loss: number; tokens: number } {
    const c = this.base.config, V = c.nVocab;
    let count = 0;
    for (const s of batch) {
      if (s.tokens.length < 2) throw new RangeError("a training sequence needs at least two tokens");
      if (s.tokens.length - 1 > this.maxT) throw new RangeError(`a sequence of ${s.tokens.length} tokens, at most ${this.maxT + 1}`);
      if (s.lossMask && s.lossMask.length !== s.tokens.length - 1) throw new RangeError(`loss mask of ${s.lossMask.length} entries for ${s.tokens.length - 1} predictions`);
      for (const t of s.tokens) if (!Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`token ${t} outside the vocabulary of ${V}`);
      for (let i = 0; i + 1 < s.tokens.length; i++) if (!s.lossMask || s.lossMask[i]) count++;
    }
    if (count === 0) throw new RangeError("the loss mask leaves no token to learn from");
    let sum = 0;
    for (const s of batch) {
      const T = s.tokens.length - 1;
      this.forward(s.tokens.slice(0, T));
      const targets = new Int32Array(this.core.arena.memory.buffer, this.ceTargets, T), weights = this.v(this.ceWeights, T);
      for (let i = 0; i < T; i++) {
        targets[i] = s.tokens[i + 1];
        weights[i] = s.lossMask && !s.lossMask[i] ? 0 : 1 / count;
      }
      // the gradient overwrites the logits in place
      K.crossEntropy(this.core, this.logits, backward ? this.logits : 0, V, this.ceTargets, this.ceWeights, this.ceLosses, T);
      const losses = new Float64Array(this.core.arena.memory.buffer, this.ceLosses, T);
      for (let i = 0; i < T; i++) sum += losses[i];
      if (backward) this.backward(T);
    }
    return { loss: sum / count, tokens: count };
  }

  /** Runs the products of one input (T rows of `cols` at `x`), then adds the adapter's B halves and biases. */
  private linear(x: number, cols: number, T: number, outs: readonly { w: Matrix; y: number; pair?: TrainPair; u?: number; bias?: Float32Array }[]): void {
    const P = this.products;
    P.setInput(x, cols, T);
    const products: Product[] = [];
    for (const o of outs) {
      products.push({ w: o.w, y: o.y });
      if (o.pair) products.push({ w: o.pair.a, y: o.u! });
    }
    P.run(products);
    K.addLowRank(this.core, F32_GEMM_ACC, outs, T);
    for (const o of outs) {
      if (o.bias) {
        const y = this.v(o.y, T * o.w.rows), n = o.w.rows;
        for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) y[t * n + i] += o.bias[i];
      }
    }
  }

  private forward(tokens: readonly number[]): void {
    const c = this.base.config, T = tokens.length, E = c.nEmbd;
    const emb = this.base.tokenEmbd, k = kernelsFor(emb.type.id);
    const deq = this.core.fn(k.dequant);
    if ("fd" in emb) {
      readTokenRows(this.core, emb, tokens, this.embRows);
      tokens.forEach((_, t) => deq(this.embRows + t * emb.rowBytes, this.xs[0] + t * E * 4, E / emb.type.blockSize));
    } else {
      tokens.forEach((tok, t) => deq(emb.ptr + tok * emb.rowBytes, this.xs[0] + t * E * 4, E / emb.type.blockSize));
    }
    for (let l = 0; l < c.nLayer; l++) this.layerForward(l, T);
    K.rmsnorm(this.core, this.outIn, this.outInv, this.xs[c.nLayer], this.norm(this.base.outputNorm), T, E, c.rmsEps);
    this.products.setInput(this.outIn, E, T);
    this.products.run([{ w: this.base.output, y: this.logits }]);
  }

  private layerForward(l: number, T: number): void {
    const c = this.base.config, L = this.base.layers[l], B = this.layers[l], A = this.adapter;
    const E = c.nEmbd, F = c.nFf, Q = c.nHead * c.headDim, KV = c.nHeadKv * c.headDim;
    const adapted = (t: Target, w: Matrix, y: number, bias?: Float32Array) => ({ w, y, pair: A.pair(l, t), u: B.u[t], bias });
    K.rmsnorm(this.core, B.attnIn, B.attnInv, this.xs[l], this.norm(L.attnNorm), T, E, c.rmsEps);
    this.linear(B.attnIn, E, T, [adapted("q", L.w.q, B.q, L.bias.q), adapted("k", L.w.k, B.k, L.bias.k), adapted("v", L.w.v, B.v, L.bias.v)]);
    K.rope(this.core, B.q, T, c.nHead, c.headDim, c.ropeNeox, this.rope, 1);
    K.rope(this.core, B.k, T, c.nHeadKv, c.headDim, c.ropeNeox, this.rope, 1);
    const shape = { T, nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim };
    K.attention(this.core, B.att, B.probs, B.q, B.k, B.v, shape);
    this.linear(B.att, Q, T, [adapted("o", L.w.o, this.tmpOut, L.bias.o)]);
    this.core.fn("add_f32")(this.xs[l], this.tmpOut, B.xMid, T * E);
    K.rmsnorm(this.core, B.ffnIn, B.ffnInv, B.xMid, this.norm(L.ffnNorm), T, E, c.rmsEps);
    this.linear(B.ffnIn, E, T, [adapted("gate", L.w.gate, B.g), adapted("up", L.w.up, B.up)]);
    K.swiglu(this.core, B.h, B.g, B.up, T * F);
    this.linear(B.h, F, T, [adapted("down", L.w.down, this.tmpOut)]);
    this.core.fn("add_f32")(B.xMid, this.tmpOut, this.xs[l + 1], T * E);
  }

  /**
   * dx (T x nIn, added to) through a product with input x (T x nIn) and output gradient dy (T x nOut): dx += dy W,
   * and with a pair dB += s dy^T u, du = s dy B, dA += du^T x, dx += du A.
   */
  private linearBackward(w: Matrix, pair: TrainPair | undefined, dy: number, x: number, u: number | undefined, dx: number, T: number): void {
    const nIn = w.cols, nOut = w.rows, G = this.grad, core = this.core;
    gemmTransposed(core, w, dy, nOut, dx, nIn, T, this.scratch);
    if (!pair || u === undefined) return;
    const r = pair.rank, s = pair.scale;
    K.transposeScale(core, dy, G.sdyT, T, nOut, s, false);
    gemmTransposed(core, f32Matrix(u, T, r), G.sdyT, T, pair.gb, r, nOut, this.scratch);
    this.v(G.du, T * r).fill(0);
    gemmTransposed(core, pair.b, dy, nOut, G.du, r, T, this.scratch);
    K.transposeScale(core, G.du, G.duT, T, r, s, true);
    gemmTransposed(core, f32Matrix(x, T, nIn), G.duT, T, pair.ga, nIn, r, this.scratch);
    gemmTransposed(core, pair.a, G.du, r, dx, nIn, T, this.scratch);
  }

  private backward(T: number): void {
    const c = this.base.config, W = this.base, G = this.grad, A = this.adapter;
    const E = c.nEmbd, F = c.nFf, Q = c.nHead * c.headDim, KV = c.nHeadKv * c.headDim;
    this.v(G.dOut, T * E).fill(0);
    gemmTransposed(this.core, W.output, this.logits, c.nVocab, G.dOut, E, T, this.scratch);
    this.v(G.dx, T * E).fill(0);
    K.rmsnormBackward(this.core, G.dx, G.dOut, this.xs[c.nLayer], this.norm(W.outputNorm), this.outInv, T, E);
    const shape = { T, nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim };
    for (let l = c.nLayer - 1; l >= 0; l--) {
      if (this.options.recompute) this.layerForward(l, T);
      const L = W.layers[l], B = this.layers[l];
      const back = (t: Target, dy: number, x: number, dx: number) => this.linearBackward(L.w[t], A.pair(l, t), dy, x, B.u[t], dx, T);
      this.v(G.dh, T * F).fill(0);
      back("down", G.dx, B.h, G.dh);
      K.swigluBackward(this.core, G.dg, G.dup, G.dh, B.g, B.up, T * F);
      this.v(G.dFfnIn, T * E).fill(0);
      back("gate", G.dg, B.ffnIn, G.dFfnIn);
      back("up", G.dup, B.ffnIn, G.dFfnIn);
      this.v(G.dMid, T * E).set(this.v(G.dx, T * E));
      K.rmsnormBackward(this.core, G.dMid, G.dFfnIn, B.xMid, this.norm(L.ffnNorm), B.ffnInv, T, E);
      this.v(G.dAtt, T * Q).fill(0);
      back("o", G.dMid, B.att, G.dAtt);
      this.v(G.dq, T * Q).fill(0);
      this.v(G.dk, T * KV).fill(0);
      this.v(G.dv, T * KV).fill(0);
      K.attentionBackward(this.core, G.dq, G.dk, G.dv, G.dAtt, B.q, B.k, B.v, B.probs, shape, this.dpScratch);
      K.rope(this.core, G.dq, T, c.nHead, c.headDim, c.ropeNeox, this.rope, -1);
      K.rope(this.core, G.dk, T, c.nHeadKv, c.headDim, c.ropeNeox, this.rope, -1);
      this.v(G.dAttnIn, T * E).fill(0);
      back("q", G.dq, B.attnIn, G.dAttnIn);
      back("k", G.dk, B.attnIn, G.dAttnIn);
      back("v", G.dv, B.attnIn, G.dAttnIn);
      K.rmsnormBackward(this.core, G.dMid, G.dAttnIn, this.xs[l], this.norm(L.attnNorm), B.attnInv, T, E);
      this.v(G.dx, T * E).set(this.v(G.dMid, T * E));
    }
  }
}
