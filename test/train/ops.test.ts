// Each op of the training reference alone: its backward pass against central finite differences of its forward pass (f64).
import { describe, expect, it } from "vitest";
import { attention, attentionBackward, type AttentionShape } from "../../src/train/reference/attention.js";
import { crossEntropy, crossEntropyBackward } from "../../src/train/reference/cross-entropy.js";
import { linear, linearBackward } from "../../src/train/reference/linear.js";
import type { LoraPair } from "../../src/train/reference/lora.js";
import { matmul, matmulBackwardInput, matmulBackwardWeight } from "../../src/train/reference/matmul.js";
import { rmsnorm, rmsnormBackward } from "../../src/train/reference/rmsnorm.js";
import { rope, ropeBackward, type RopeParams } from "../../src/train/reference/rope.js";
import { swiglu, swigluBackward } from "../../src/train/reference/swiglu.js";
import { centralDifferences, dot, normwiseError, randomArray } from "./helpers.js";

// Every op is smooth and its inputs are O(1): with h = 1e-5 the central difference's truncation (h^2) and rounding
// (1e-16 / h) errors are both near 1e-10 of the gradient's size. A wrong gradient is off by O(1); the bound is 1e-7.
const H = 1e-5;
const BOUND = 1e-7;

/** Checks d(sum(out * R))/d(input) for every entry of `input`. */
function check(name: string, input: Float64Array, loss: () => number, analytic: Float64Array, bound = BOUND): number {
  const fd = centralDifferences(loss, input, Array.from({ length: input.length }, (_, i) => i), H);
  const err = normwiseError(analytic, fd);
  expect(err, name).toBeLessThanOrEqual(bound);
  return err;
}

describe("training reference ops: backward vs central finite differences (normwise bound 1e-7 each)", () => {
  it("matmul: gradient to the input (W^T dy) and to the weight", () => {
    const T = 3, nIn = 7, nOut = 5;
    const x = randomArray(T * nIn, 1), w = randomArray(nOut * nIn, 2), R = randomArray(T * nOut, 3);
    const f = () => { const y = new Float64Array(T * nOut); matmul(y, x, w, T, nIn, nOut); return dot(y, R); };
    const dx = new Float64Array(T * nIn), dw = new Float64Array(nOut * nIn);
    matmulBackwardInput(dx, R, w, T, nIn, nOut);
    matmulBackwardWeight(dw, R, x, T, nIn, nOut);
    check("dx", x, f, dx);
    check("dw", w, f, dw);
  });

  it("LoRA product: gradient to the input, A and B", () => {
    const T = 3, nIn = 6, nOut = 5, rank = 2;
    const x = randomArray(T * nIn, 4), R = randomArray(T * nOut, 5);
    const W = { rows: nOut, cols: nIn, w: randomArray(nOut * nIn, 6) };
    const pair: LoraPair = { rank, nIn, nOut, scale: 1.5, a: randomArray(rank * nIn, 7), b: randomArray(nOut * rank, 8) };
    const bias = randomArray(nOut, 9);
    const f = () => { const y = new Float64Array(T * nOut); linear(y, x, W, T, pair, bias); return dot(y, R); };
    const y = new Float64Array(T * nOut);
    const u = linear(y, x, W, T, pair, bias);
    const dx = new Float64Array(T * nIn), grad = { a: new Float64Array(pair.a.length), b: new Float64Array(pair.b.length) };
    linearBackward(dx, R, x, W, T, pair, u, grad);
    check("dx", x, f, dx);
    check("dA", pair.a, f, grad.a);
    check("dB", pair.b, f, grad.b);
  });

  it("RMSNorm: gradient to the input", () => {
    const T = 3, n = 8, eps = 1e-5;
    const x = randomArray(T * n, 10), w = randomArray(n, 11, 2), R = randomArray(T * n, 12);
    const f = () => { const y = new Float64Array(T * n); rmsnorm(y, x, w, T, n, eps); return dot(y, R); };
    const y = new Float64Array(T * n);
    const inv = rmsnorm(y, x, w, T, n, eps);
    const dx = new Float64Array(T * n);
    rmsnormBackward(dx, R, x, w, inv, T, n);
    check("dx", x, f, dx);
  });

  for (const neox of [false, true]) {
    it(`RoPE (${neox ? "neox" : "normal"} order, partial rotation): gradient to the input`, () => {
      const T = 4, p: RopeParams = { nHeads: 2, headDim: 8, ropeDims: 6, base: 10000, freqScale: 0.5, neox };
      const positions = [0, 3, 7, 20];
      const x = randomArray(T * 16, 13), R = randomArray(T * 16, 14);
      const f = () => { const y = x.slice(); rope(y, T, positions, p); return dot(y, R); };
      const dx = R.slice();
      ropeBackward(dx, T, positions, p);
      check("dx", x, f, dx);
      // the two orders rotate different pairs, and dimensions past ropeDims pass through
      const y = x.slice();
      rope(y, T, positions, p);
      // row 1 (position 3), head 0: dims 6 and 7 pass through, dim 1 turns
      expect(y[16 + 6]).toBe(x[16 + 6]);
      expect(y[16 + 7]).toBe(x[16 + 7]);
      expect(y[16 + 1]).not.toBe(x[16 + 1]);
    });
  }

  it("RoPE orders: normal rotates (0, 1), neox rotates (0, ropeDims/2), each by pos * base^(-2i/ropeDims)", () => {
    const x = Float64Array.from([1, 2, 3, 4]);
    const base = { nHeads: 1, headDim: 4, ropeDims: 4, base: 100, freqScale: 1 };
    const normal = x.slice(), neox = x.slice();
    rope(normal, 1, [2], { ...base, neox: false });
    rope(neox, 1, [2], { ...base, neox: true });
    const c0 = Math.cos(2), s0 = Math.sin(2), c1 = Math.cos(0.2), s1 = Math.sin(0.2);
    expect([...normal]).toEqual([1 * c0 - 2 * s0, 1 * s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1]);
    expect([...neox]).toEqual([1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1]);
  });

  it("causal grouped-query attention: gradients to q, k and v", () => {
    const s: AttentionShape = { T: 5, nHead: 4, nHeadKv: 2, headDim: 3 };
    const q = randomArray(s.T * 12, 15), k = randomArray(s.T * 6, 16), v = randomArray(s.T * 6, 17), R = randomArray(s.T * 12, 18);
    const f = () => { const o = new Float64Array(s.T * 12); attention(o, q, k, v, s); return dot(o, R); };
    const out = new Float64Array(s.T * 12);
    const probs = attention(out, q, k, v, s);
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    attentionBackward(dq, dk, dv, R, q, k, v, probs, s);
    check("dq", q, f, dq);
    check("dk", k, f, dk);
    check("dv", v, f, dv);
  });

  it("attention is causal and groups query heads over KV heads as ggml does", () => {
    const s: AttentionShape = { T: 3, nHead: 4, nHeadKv: 2, headDim: 2 };
    const q = randomArray(s.T * 8, 19), k = randomArray(s.T * 4, 20), v = randomArray(s.T * 4, 21);
    const out = new Float64Array(s.T * 8);
    attention(out, q, k, v, s);
    // the first row sees only position 0: each head's output is its KV head's v[0]
    expect([...out.subarray(0, 8)]).toEqual([v[0], v[1], v[0], v[1], v[2], v[3], v[2], v[3]]);
    // changing the last position's key and value leaves the earlier rows alone
    const k2 = k.slice(), v2 = v.slice();
    k2[8] += 1; v2[9] -= 1;
    const out2 = new Float64Array(s.T * 8);
    attention(out2, q, k2, v2, s);
    expect([...out2.subarray(0, 16)]).toEqual([...out.subarray(0, 16)]);
    expect(out2[16]).not.toBe(out[16]);
  });

  it("SwiGLU: gradients to the gate and up inputs", () => {
    const n = 9;
    const g = randomArray(n, 22, 3), u = randomArray(n, 23, 2), R = randomArray(n, 24);
    const f = () => { const h = new Float64Array(n); swiglu(h, g, u, n); return dot(h, R); };
    const dg = new Float64Array(n), du = new Float64Array(n);
    swigluBackward(dg, du, R, g, u, n);
    check("dg", g, f, dg);
    check("du", u, f, du);
  });

  it("cross-entropy over the vocabulary: gradient to the logits", () => {
    const n = 11, z = randomArray(2 * n, 25, 4), target = 3;
    const f = () => 0.7 * crossEntropy(z, n, n, target);
    const dz = new Float64Array(2 * n);
    crossEntropyBackward(dz, z, n, n, target, 0.7);
    check("dz", z, f, dz);
    expect(dz.subarray(0, n).every((x) => x === 0)).toBe(true);
    // the loss is -log softmax: exp(-loss) summed over all targets is 1
    let total = 0;
    for (let t = 0; t < n; t++) total += Math.exp(-crossEntropy(z, 0, n, t));
    expect(total).toBeCloseTo(1, 12);
  });
});
