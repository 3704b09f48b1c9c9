// What the reference's forward pass keeps per layer for the backward pass (all activations; nothing is recomputed).

export interface LayerActivations {
  /** Residual stream entering the layer (T x nEmbd). */
  readonly x: Float64Array;
  /** 1 / rms of each row at the attention norm, and the normed rows (input of q, k, v). */
  readonly attnInv: Float64Array;
  readonly attnIn: Float64Array;
  /** A x of each adapted projection (u<target>), when it has a LoRA pair. */
  readonly uq?: Float64Array;
  readonly uk?: Float64Array;
  readonly uv?: Float64Array;
  /** q and k after RoPE, v (T x width). */
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  /** Attention probabilities (nHead x T x T). */
  readonly probs: Float64Array;
  /** Attention output (input of o). */
  readonly att: Float64Array;
  readonly uo?: Float64Array;
  /** Residual stream after attention. */
  readonly xMid: Float64Array;
  readonly ffnInv: Float64Array;
  readonly ffnIn: Float64Array;
  readonly g: Float64Array;
  readonly up: Float64Array;
  readonly ugate?: Float64Array;
  readonly uup?: Float64Array;
  /** silu(g) * up (input of down). */
  readonly h: Float64Array;
  readonly udown?: Float64Array;
}

/** One sequence's forward pass: per-layer activations, the final norm, and the logits (T x nVocab). */
export interface RunState {
  readonly T: number;
  readonly positions: readonly number[];
  readonly layers: LayerActivations[];
  /** Residual stream after the last layer. */
  readonly xFinal: Float64Array;
  readonly outInv: Float64Array;
  readonly outIn: Float64Array;
  readonly logits: Float64Array;
}
