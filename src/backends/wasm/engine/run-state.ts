// Run state of the engine's forward pass: activation buffers for a batch of rows, logits rows, attention scores and the products' scratch, in core memory.
import type { Core } from "../../../core/core.js";
import { Products } from "../../../core/products.js";
import type { EngineConfig } from "./config.js";

/** Activation buffers, each holding `maxRows` rows (one per token of a batch), f32, row after row. */
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

export class RunState {
  readonly act: Activations;
  readonly products: Products;
  /** Next-token logits, one row of nVocab per sequence that asked for them. */
  logits = 0;
  private logitsRows = 0;
  /** Attention scores of one row (softmax attention), at least `scoresCap` values. */
  scores = 0;
  private scoresCap = 0;

  constructor(private readonly core: Core, private readonly config: EngineConfig, readonly maxRows: number) {
    const c = config;
    const maxCols = Math.max(c.nEmbd, c.nFf, c.nHead * c.headDim);
    const f = (n: number) => core.arena.alloc(maxRows * n * 4);
    const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
    this.act = { x: f(c.nEmbd), xn: f(maxCols), q: f(qDim), k: f(kvDim), v: f(kvDim), att: f(qDim), o: f(c.nEmbd), g: f(c.nFf), u: f(c.nFf), h: f(c.nFf) };
    this.products = new Products(core, maxCols, maxRows);
    this.reserveLogits(1);
    this.reserveScores(1024);
  }

  /** Makes room for `rows` logits rows (their contents are not kept). */
  reserveLogits(rows: number): void {
    if (rows <= this.logitsRows) return;
    if (this.logits) this.core.arena.release(this.logits);
    this.logits = this.core.arena.alloc(rows * this.config.nVocab * 4);
    this.logitsRows = rows;
  }

  /** Makes room for attention scores over `n` positions. */
  reserveScores(n: number): void {
    if (n <= this.scoresCap) return;
    if (this.scores) this.core.arena.release(this.scores);
    this.scoresCap = Math.max(n, this.scoresCap * 2);
    this.scores = this.core.arena.alloc(this.scoresCap * 4);
  }

  /** Releases the memory. */
  dispose(): void {
    const a = this.core.arena;
    this.products.dispose();
    for (const p of Object.values(this.act)) a.release(p);
    a.release(this.logits);
    a.release(this.scores);
  }
}
