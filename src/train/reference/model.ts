// The f64 reference of LoRA training for the llama family: forward pass over a sequence, masked next-token loss, and the backward pass to A and B.
import type { GgufFile } from "../../gguf/reader.js";
import { attention, attentionBackward, type AttentionShape } from "./attention.js";
import { referenceConfig, type ReferenceConfig } from "./config.js";
import { crossEntropy, crossEntropyBackward } from "./cross-entropy.js";
import { linear, linearBackward } from "./linear.js";
import { baseTensorName, zeroGradients, type LoraAdapter, type LoraGradients, type LoraPair, type Target } from "./lora.js";
import { matmul, matmulBackwardInput } from "./matmul.js";
import { rmsnorm, rmsnormBackward } from "./rmsnorm.js";
import { rope, ropeBackward, type RopeParams } from "./rope.js";
import type { LayerActivations, RunState } from "./run-state.js";
import { swiglu, swigluBackward } from "./swiglu.js";
import { loadBaseWeights, type BaseWeights } from "./weights.js";

/** A frozen base model: its configuration and its weights as f64. */
export interface ReferenceModel {
  readonly config: ReferenceConfig;
  readonly weights: BaseWeights;
}

export function loadReferenceModel(file: GgufFile): ReferenceModel {
  const config = referenceConfig(file);
  return { config, weights: loadBaseWeights(file, config) };
}

/**
 * One training sequence: the model reads tokens[0..n-2] and predicts tokens[1..n-1]. lossMask[i] says whether
 * the prediction of tokens[i + 1] counts (default: all do); a prompt's predictions are left out this way.
 */
export interface TrainSequence {
  readonly tokens: readonly number[];
  readonly lossMask?: readonly boolean[];
}

const pairOf = (lora: LoraAdapter | undefined, l: number, t: Target): LoraPair | undefined => lora?.pairs.get(baseTensorName(l, t));

function ropeParams(c: ReferenceConfig, nHeads: number): RopeParams {
  return { nHeads, headDim: c.headDim, ropeDims: c.ropeDims, base: c.ropeBase, freqScale: c.ropeFreqScale, neox: c.ropeNeox };
}

function attentionShape(c: ReferenceConfig, T: number): AttentionShape {
  return { T, nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim };
}

function checkTokens(c: ReferenceConfig, tokens: readonly number[]): void {
  if (tokens.length < 1) throw new RangeError("a sequence needs at least one token");
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} outside the vocabulary of ${c.nVocab}`);
}

/** Runs `tokens` (positions 0..T-1) through the model with the adapter; keeps every activation the backward pass needs. */
export function forward(m: ReferenceModel, lora: LoraAdapter | undefined, tokens: readonly number[]): RunState {
  const c = m.config, W = m.weights;
  checkTokens(c, tokens);
  const T = tokens.length, E = c.nEmbd, F = c.nFf;
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const positions = tokens.map((_, i) => i);
  let x = new Float64Array(T * E);
  tokens.forEach((tok, t) => x.set(W.tokenEmbd.w.subarray(tok * E, (tok + 1) * E), t * E));
  const layers: LayerActivations[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const L = W.layers[l];
    const attnIn = new Float64Array(T * E);
    const attnInv = rmsnorm(attnIn, x, L.attnNorm, T, E, c.rmsEps);
    const q = new Float64Array(T * qDim), k = new Float64Array(T * kvDim), v = new Float64Array(T * kvDim);
    const uq = linear(q, attnIn, L.wq, T, pairOf(lora, l, "q"), L.bq);
    const uk = linear(k, attnIn, L.wk, T, pairOf(lora, l, "k"), L.bk);
    const uv = linear(v, attnIn, L.wv, T, pairOf(lora, l, "v"), L.bv);
    rope(q, T, positions, ropeParams(c, c.nHead));
    rope(k, T, positions, ropeParams(c, c.nHeadKv));
    const att = new Float64Array(T * qDim);
    const probs = attention(att, q, k, v, attentionShape(c, T));
    const o = new Float64Array(T * E);
    const uo = linear(o, att, L.wo, T, pairOf(lora, l, "o"), L.bo);
    const xMid = x.map((xi, i) => xi + o[i]);
    const ffnIn = new Float64Array(T * E);
    const ffnInv = rmsnorm(ffnIn, xMid, L.ffnNorm, T, E, c.rmsEps);
    const g = new Float64Array(T * F), up = new Float64Array(T * F), h = new Float64Array(T * F);
    const ugate = linear(g, ffnIn, L.gate, T, pairOf(lora, l, "gate"));
    const uup = linear(up, ffnIn, L.up, T, pairOf(lora, l, "up"));
    swiglu(h, g, up, T * F);
    const down = new Float64Array(T * E);
    const udown = linear(down, h, L.down, T, pairOf(lora, l, "down"));
    layers.push({ x, attnInv, attnIn, uq, uk, uv, q, k, v, probs, att, uo, xMid, ffnInv, ffnIn, g, up, ugate, uup, h, udown });
    x = xMid.map((xi, i) => xi + down[i]);
  }
  const outIn = new Float64Array(T * E);
  const outInv = rmsnorm(outIn, x, W.outputNorm, T, E, c.rmsEps);
  const logits = new Float64Array(T * c.nVocab);
  matmul(logits, outIn, W.output.w, T, E, c.nVocab);
  return { T, positions, layers, xFinal: x, outInv, outIn, logits };
}

/** Next-token logits of every position (T x nVocab), as llama.cpp computes them for the same tokens. */
export function logits(m: ReferenceModel, lora: LoraAdapter | undefined, tokens: readonly number[]): Float64Array {
  return forward(m, lora, tokens).logits;
}

/** The targets a sequence's loss counts: [position, target token] pairs. */
function countedTargets(s: TrainSequence): [number, number][] {
  if (s.tokens.length < 2) throw new RangeError("a training sequence needs at least two tokens");
  if (s.lossMask && s.lossMask.length !== s.tokens.length - 1) {
    throw new RangeError(`loss mask of ${s.lossMask.length} entries for ${s.tokens.length - 1} predictions`);
  }
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < s.tokens.length; i++) if (!s.lossMask || s.lossMask[i]) out.push([i, s.tokens[i + 1]]);
  return out;
}

function batchTargets(c: ReferenceConfig, batch: readonly TrainSequence[]): { targets: [number, number][][]; count: number } {
  for (const s of batch) checkTokens(c, s.tokens);
  const targets = batch.map(countedTargets);
  const count = targets.reduce((n, t) => n + t.length, 0);
  if (count === 0) throw new RangeError("the loss mask leaves no token to learn from");
  return { targets, count };
}

/** Mean cross-entropy over the batch's counted predictions (forward only). */
export function loss(m: ReferenceModel, lora: LoraAdapter | undefined, batch: readonly TrainSequence[]): number {
  const { targets, count } = batchTargets(m.config, batch);
  const V = m.config.nVocab;
  let sum = 0;
  batch.forEach((s, b) => {
    const z = forward(m, lora, s.tokens.slice(0, -1)).logits;
    for (const [t, target] of targets[b]) sum += crossEntropy(z, t * V, V, target);
  });
  return sum / count;
}

/** The mean loss over the batch and its gradients with respect to every A and B of the adapter (the base is frozen). */
export function lossAndGradients(m: ReferenceModel, lora: LoraAdapter, batch: readonly TrainSequence[]): { loss: number; tokens: number; grads: LoraGradients } {
  const { targets, count } = batchTargets(m.config, batch);
  const V = m.config.nVocab;
  const grads = zeroGradients(lora);
  let sum = 0;
  batch.forEach((s, b) => {
    const state = forward(m, lora, s.tokens.slice(0, -1));
    const dlogits = new Float64Array(state.logits.length);
    for (const [t, target] of targets[b]) {
      sum += crossEntropy(state.logits, t * V, V, target);
      crossEntropyBackward(dlogits, state.logits, t * V, V, target, 1 / count);
    }
    backward(m, lora, state, dlogits, grads);
  });
  return { loss: sum / count, tokens: count, grads };
}

/** Accumulates into `grads` the gradients of A and B from the gradient of the logits of one forward pass. */
export function backward(m: ReferenceModel, lora: LoraAdapter, s: RunState, dlogits: Float64Array, grads: LoraGradients): void {
  const c = m.config, W = m.weights, T = s.T, E = c.nEmbd, F = c.nFf;
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const gradOf = (l: number, t: Target) => {
    const key = baseTensorName(l, t);
    if (!lora.pairs.has(key)) return undefined;
    const g = grads.get(key);
    if (!g) throw new Error(`no gradient buffer for the adapted ${key}`);
    return g;
  };
  const dOutIn = new Float64Array(T * E);
  matmulBackwardInput(dOutIn, dlogits, W.output.w, T, E, c.nVocab);
  let dx = new Float64Array(T * E);
  rmsnormBackward(dx, dOutIn, s.xFinal, W.outputNorm, s.outInv, T, E);
  for (let l = c.nLayer - 1; l >= 0; l--) {
    const L = W.layers[l], a = s.layers[l];
    // feed-forward: x_out = xMid + down(swiglu(gate(n), up(n))), n = rmsnorm(xMid)
    const dh = new Float64Array(T * F);
    linearBackward(dh, dx, a.h, L.down, T, pairOf(lora, l, "down"), a.udown, gradOf(l, "down"));
    const dg = new Float64Array(T * F), dup = new Float64Array(T * F);
    swigluBackward(dg, dup, dh, a.g, a.up, T * F);
    const dFfnIn = new Float64Array(T * E);
    linearBackward(dFfnIn, dg, a.ffnIn, L.gate, T, pairOf(lora, l, "gate"), a.ugate, gradOf(l, "gate"));
    linearBackward(dFfnIn, dup, a.ffnIn, L.up, T, pairOf(lora, l, "up"), a.uup, gradOf(l, "up"));
    const dMid = dx.slice();
    rmsnormBackward(dMid, dFfnIn, a.xMid, L.ffnNorm, a.ffnInv, T, E);
    // attention: xMid = x + o(attention(rope(q(n)), rope(k(n)), v(n))), n = rmsnorm(x)
    const dAtt = new Float64Array(T * qDim);
    linearBackward(dAtt, dMid, a.att, L.wo, T, pairOf(lora, l, "o"), a.uo, gradOf(l, "o"));
    const dq = new Float64Array(T * qDim), dk = new Float64Array(T * kvDim), dv = new Float64Array(T * kvDim);
    attentionBackward(dq, dk, dv, dAtt, a.q, a.k, a.v, a.probs, attentionShape(c, T));
    ropeBackward(dq, T, s.positions, ropeParams(c, c.nHead));
    ropeBackward(dk, T, s.positions, ropeParams(c, c.nHeadKv));
    const dAttnIn = new Float64Array(T * E);
    linearBackward(dAttnIn, dq, a.attnIn, L.wq, T, pairOf(lora, l, "q"), a.uq, gradOf(l, "q"));
    linearBackward(dAttnIn, dk, a.attnIn, L.wk, T, pairOf(lora, l, "k"), a.uk, gradOf(l, "k"));
    linearBackward(dAttnIn, dv, a.attnIn, L.wv, T, pairOf(lora, l, "v"), a.uv, gradOf(l, "v"));
    rmsnormBackward(dMid, dAttnIn, a.x, L.attnNorm, a.attnInv, T, E);
    dx = dMid;
  }
}
