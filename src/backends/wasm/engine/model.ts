// The wasm engine's model: configuration, weights and run state kept apart (as llama2.c's run.c), adapters, and the forward pass over batches of rows.
import type { Core } from "../../../core/core.js";
import { AdapterPrecision, EngineAdapter, loadAdapter, modelTerms, type ModelTerms } from "./adapters.js";
import { EngineConfig, ModelSource, readConfig } from "./config.js";
import { forward, type SequenceRows } from "./forward.js";
import { KvCache } from "./kv-cache.js";
import { RunState } from "./run-state.js";
import { loadWeights, ModelWeights, WeightOptions } from "./weights.js";

export type { ModelTerms, SequenceRows };

export class EngineModel {
  readonly config: EngineConfig;
  readonly weights: ModelWeights;
  private readonly state: RunState;

  /** Most rows (tokens of all sequences together) one forward pass takes; its run state grows with it. */
  static readonly BATCH_TOKENS = 32;

  constructor(readonly core: Core, src: ModelSource, onProgress?: (p: number) => void, opts: WeightOptions = {}) {
    this.config = readConfig(src);
    this.weights = loadWeights(core, src, this.config, onProgress, opts);
    this.state = new RunState(core, this.config, EngineModel.BATCH_TOKENS);
  }

  /**
   * Attention as llama.cpp's CPU flash attention computes it (its default: f16 running sum of V), or as
   * a separate softmax then an f16 product with V (llama.cpp with flash attention off).
   */
  flashAttention = true;

  /**
   * Quantize activations to 8 bits for quantized weights (llama.cpp's behaviour); false keeps f32, which needs
   * the model loaded with `repackQ4_0: false` when it has Q4_0 products (grouped rows have an 8-bit-x kernel only).
   */
  set activationsX8(on: boolean) {
    this.state.products.x8 = on;
  }

  /** How adapters loaded from now on keep their halves (see AdapterPrecision); "f32" by default. */
  adapterPrecision: AdapterPrecision = "f32";

  loadAdapter(src: ModelSource, opts: { precision?: AdapterPrecision } = {}): EngineAdapter {
    return loadAdapter(this.core, src, this.weights.byName, this.config.architecture, opts.precision ?? this.adapterPrecision);
  }

  /** Adapter terms for an active set, arranged per layer and projection for the forward pass. */
  terms(active: readonly { adapter: EngineAdapter; scale: number }[]): ModelTerms {
    return modelTerms(this.weights, active);
  }

  newKvCache(nCtx: number): KvCache {
    const c = this.config;
    return new KvCache(this.core, c.nLayer, nCtx, c.nHeadKv * c.headDim);
  }

  /**
   * One forward pass over the rows of several sequences (at most BATCH_TOKENS rows in all; a single token of a
   * single sequence is a batch of one), storing each row's K/V in its sequence's cache. Every row computes what
   * its sequence evaluated alone computes, bit for bit. Returns per sequence the logits row it left (read with
   * `logits(row)` / `argmax(row)` until the next pass), or -1 when it asked for none.
   */
  forward(seqs: readonly SequenceRows[]): number[] {
    return forward(this.core, this.config, this.weights, this.state, seqs, { flashAttention: this.flashAttention });
  }

  /** A copy of a logits row left by the last forward pass (row 0: the first sequence that asked for logits). */
  logits(row = 0): Float32Array {
    return this.core.arena.f32(this.state.logits + row * this.config.nVocab * 4, this.config.nVocab).slice();
  }

  /** Index of the largest logit of a logits row of the last forward pass (wasm argmax, no copy). */
  argmax(row = 0): number {
    return this.core.fn("argmax_f32")(this.state.logits + row * this.config.nVocab * 4, this.config.nVocab) as number;
  }
}
