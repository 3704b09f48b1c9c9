// The wasm training kernels (assembly/train-ops.ts) against the scalar TypeScript ops, and the same bits on two threads as on one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCore, createPool, type Core, type KernelPool } from "../../src/core/index.js";
import * as K from "../../src/train/engine/kernels.js";
import * as ops from "../../src/train/engine/ops.js";
import { normwiseError } from "./helpers.js";
import { mulberry32 } from "../../src/random.js";
import { AdamWF32, CoreSumOfSquares, SUM_PIECE, sumOfSquares, sumOfSquaresInLanes } from "../../src/train/engine/adamw.js";

let core: Core;
let pool: KernelPool;
beforeAll(async () => {
  core = await loadCore();
  // polling threads whatever the host's core count, so the ops take their shared-out paths here
  pool = await createPool({ threads: 2, maxBytes: 64 << 20, minParallelBytes: 0, spinPolls: 20000 });
});
afterAll(() => pool.dispose());

function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}

/** Puts arrays into the core, runs fn on their pointers, returns copies of all of them afterwards. */
function onCore(c: Core, arrays: Float32Array[], fn: (ptrs: number[]) => void): Float32Array[] {
  const ptrs = arrays.map((a) => c.arena.put(a));
  try {
    fn(ptrs);
    return ptrs.map((p, i) => c.arena.f32(p, arrays[i].length).slice());
  } finally {
    for (const p of ptrs) c.arena.release(p);
  }
}

const hosts = () => [core, pool.core];

describe("training kernels in the wasm core", () => {
  it("RMSNorm forward and backward equal the TypeScript ops (rows of 67, a 3-value tail)", () => {
    const T = 37, n = 67, eps = 1e-5;
    const x = random(T * n, 1), w = random(n, 2), dy = random(T * n, 3), dx0 = random(T * n, 4);
    const y = new Float32Array(T * n), inv = new Float32Array(T), dx = dx0.slice();
    ops.rmsnorm(y, inv, x, w, T, n, eps);
    ops.rmsnormBackward(dx, dy, x, w, inv, T, n);
    const runs = hosts().map((c) => onCore(c, [new Float32Array(T * n), new Float32Array(T), x, w, dy, dx0.slice()], ([yp, ip, xp, wp, dyp, dxp]) => {
      K.rmsnorm(c, yp, ip, xp, wp, T, n, eps);
      K.rmsnormBackward(c, dxp, dyp, xp, wp, ip, T, n);
    }));
    expect(normwiseError(runs[0][0], y)).toBeLessThan(1e-6);
    expect(normwiseError(runs[0][1], inv)).toBeLessThan(1e-6);
    expect(normwiseError(runs[0][5], dx)).toBeLessThan(1e-6);
    expect(runs[1]).toEqual(runs[0]);
  });

  it("SwiGLU forward and backward equal the TypeScript ops", () => {
    const n = 70001;
    const g = random(n, 5, 6), u = random(n, 6), dh = random(n, 7);
    const h = new Float32Array(n), dg = new Float32Array(n), du = new Float32Array(n);
    ops.swiglu(h, g, u, n);
    ops.swigluBackward(dg, du, dh, g, u, n);
    const runs = hosts().map((c) => onCore(c, [new Float32Array(n), g, u, dh, new Float32Array(n), new Float32Array(n)], ([hp, gp, up, dhp, dgp, dup]) => {
      K.swiglu(c, hp, gp, up, n);
      K.swigluBackward(c, dgp, dup, dhp, gp, up, n);
    }));
    expect(normwiseError(runs[0][0], h)).toBeLessThan(1e-6);
    expect(normwiseError(runs[0][4], dg)).toBeLessThan(1e-6);
    expect(normwiseError(runs[0][5], du)).toBeLessThan(1e-6);
    expect(runs[1]).toEqual(runs[0]);
  });

  for (const [nHead, nHeadKv, d] of [[6, 6, 8], [8, 2, 6], [4, 1, 7]]) {
    it(`causal attention forward and backward equal the TypeScript ops (${nHead} heads over ${nHeadKv}, head size ${d})`, () => {
      const T = 29, s = { T, nHead, nHeadKv, headDim: d }, Q = T * nHead * d, KV = T * nHeadKv * d;
      const q = random(Q, 8, 2), k = random(KV, 9, 2), v = random(KV, 10), dout = random(Q, 11);
      const out = new Float32Array(Q), probs = new Float32Array(nHead * T * T);
      const dq = random(Q, 12), dk = random(KV, 13), dv = random(KV, 14);
      const dq0 = dq.slice(), dk0 = dk.slice(), dv0 = dv.slice();
      ops.attention(out, probs, q, k, v, s);
      ops.attentionBackward(dq, dk, dv, dout, q, k, v, probs, s);
      const runs = hosts().map((c) => {
        const dp = Array.from({ length: K.rangeScratchCount(c) }, () => c.arena.alloc(4 * T));
        try {
          return onCore(c, [new Float32Array(Q), new Float32Array(nHead * T * T), q, k, v, dout, dq0.slice(), dk0.slice(), dv0.slice()], ([op, pp, qp, kp, vp, dop, dqp, dkp, dvp]) => {
            K.attention(c, op, pp, qp, kp, vp, s);
            K.attentionBackward(c, dqp, dkp, dvp, dop, qp, kp, vp, pp, s, dp);
          });
        } finally {
          for (const p of dp) c.arena.release(p);
        }
      });
      expect(normwiseError(runs[0][0], out)).toBeLessThan(1e-6);
      expect(normwiseError(runs[0][1], probs)).toBeLessThan(1e-6);
      expect(normwiseError(runs[0][6], dq)).toBeLessThan(1e-5);
      expect(normwiseError(runs[0][7], dk)).toBeLessThan(1e-5);
      expect(normwiseError(runs[0][8], dv)).toBeLessThan(1e-5);
      expect(runs[1]).toEqual(runs[0]);
    });
  }

  it("cross-entropy over the vocabulary equals the TypeScript op, masked rows skipped, gradient in place", () => {
    const T = 9, n = 1003;
    const logits = random(T * n, 15, 8), targets = Int32Array.from({ length: T }, (_, t) => (t * 389) % n);
    const weights = Float32Array.from({ length: T }, (_, t) => (t % 3 === 1 ? 0 : 0.125));
    const dl = new Float32Array(T * n);
    const losses = Array.from({ length: T }, (_, t) => (weights[t] ? ops.crossEntropy(logits, t * n, n, targets[t], dl, weights[t]) : 0));
    for (const c of hosts()) {
      const tp = c.arena.put(targets), lp = c.arena.alloc(8 * T);
      try {
        const [fwd, , , lossOnly] = onCore(c, [logits, weights, new Float32Array(2 * T)], ([xp, wp]) => K.crossEntropy(c, xp, 0, n, tp, wp, lp, T)).concat([new Float32Array(new Float64Array(c.arena.memory.buffer, lp, T))]);
        expect(fwd).toEqual(logits);
        const [grad] = onCore(c, [logits, weights], ([xp, wp]) => K.crossEntropy(c, xp, xp, n, tp, wp, lp, T));
        const got = new Float64Array(c.arena.memory.buffer, lp, T);
        for (let t = 0; t < T; t++) {
          expect(Math.abs(got[t] - losses[t])).toBeLessThan(1e-5 * Math.max(1, losses[t]));
          expect(lossOnly[t]).toBeCloseTo(losses[t], 4);
        }
        expect(normwiseError(grad, dl)).toBeLessThan(1e-6);
      } finally {
        c.arena.release(tp);
        c.arena.release(lp);
      }
    }
  });
  it("cross-entropy's four-lane exponentials: softmax weights within 2e-7 relative over logit gaps of 0 to -87, and below 1e-37 past that (no NaN)", () => {
    // rows of two logits, 0 and x: the second weight is e^x / (1 + e^x)
    const xs = Array.from({ length: 6400 }, (_, i) => Math.fround(-87 + (87 * i) / 6399)).concat([-88, -150, -1e30]);
    const T = xs.length, n = 2;
    const logits = Float32Array.from(xs.flatMap((x) => [0, x])), weights = new Float32Array(T).fill(1);
    for (const c of hosts()) {
      const tp = c.arena.put(new Int32Array(T)), lp = c.arena.alloc(8 * T);
      try {
        const [grad] = onCore(c, [logits, weights], ([xp, wp]) => K.crossEntropy(c, xp, xp, n, tp, wp, lp, T));
        let worst = 0;
        xs.forEach((x, t) => {
          const want = Math.exp(x) / (1 + Math.exp(x)), got = grad[2 * t + 1];
          expect(Number.isFinite(got)).toBe(true);
          if (x >= -87) worst = Math.max(worst, Math.abs(got - want) / want);
          else expect(got).toBeLessThan(1e-37);
        });
        expect(worst).toBeLessThan(2e-7);
      } finally {
        c.arena.release(tp);
        c.arena.release(lp);
      }
    }
  });
  it("seeded draws in the core (train_uniform) are mulberry32's (2u - 1) * range rounded to f32, the state carried between calls", () => {
    const rand = mulberry32(0xdeadbeef);
    const want = Float32Array.from({ length: 1000 }, (_, i) => (2 * rand() - 1) * (i < 777 ? 0.0625 : 0));
    const out = core.arena.alloc(4000), state = core.arena.alloc(4);
    try {
      new Uint32Array(core.arena.memory.buffer, state, 1)[0] = 0xdeadbeef;
      core.fn("train_uniform")(out, 777, state, 0.0625);
      core.fn("train_uniform")(out + 777 * 4, 223, state, 0);
      const got = core.arena.f32(out, 1000);
      expect(new Uint32Array(got.slice().buffer)).toEqual(new Uint32Array(want.buffer));
    } finally {
      core.arena.release(out);
      core.arena.release(state);
    }
  });
  it("transpose and scale (train_transpose_scale): f32(s x) in f64 as TypeScript computes it, optionally written back, on one thread and over column ranges of the pool", () => {
    for (const [rows, cols] of [[13, 7], [63, 769]]) {
      const s = 16 / 3;
      const x = random(rows * cols, 41);
      const want = new Float32Array(rows * cols), back = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c * rows + r] = back[r * cols + c] = s * x[r * cols + c];
      for (const inPlace of [false, true]) {
        for (const c of hosts()) {
          const [src, dst] = onCore(c, [x, new Float32Array(rows * cols)], ([sp, dp]) => K.transposeScale(c, sp, dp, rows, cols, s, inPlace));
          expect(dst).toEqual(want);
          expect(src).toEqual(inPlace ? back : x);
        }
      }
    }
  });
  it("RoPE in the core (train_rope) is the TypeScript op bit for bit: normal and neox pairs, partial rotation, both directions, on one thread and over the pool", () => {
    // 64 rows of 32 heads: enough work to be split over the pool
    const T = 64, nHeads = 32, headDim = 12;
    for (const ropeDims of [12, 8]) {
      const table = ops.ropeTable(T, ropeDims, 10000, 0.5);
      for (const neox of [false, true]) {
        for (const sign of [1, -1] as const) {
          const x = random(T * nHeads * headDim, 70 + ropeDims, 2);
          const want = x.slice();
          ops.rope(want, T, nHeads, headDim, neox, table, sign);
          for (const c of hosts()) {
            const [got] = onCore(c, [x, new Float32Array(2 * table.cos.length), new Float32Array(2 * table.sin.length)], ([xp, cp, sp]) => {
              new Float64Array(c.arena.memory.buffer, cp, table.cos.length).set(table.cos);
              new Float64Array(c.arena.memory.buffer, sp, table.sin.length).set(table.sin);
              K.rope(c, xp, T, nHeads, headDim, neox, { cos: cp, sin: sp, half: table.half }, sign);
            });
            expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
          }
        }
      }
    }
  });
  it("the gradients' sum of squares in the core (train_sum_squares, pieces added in order) is its scalar reference's, on one thread and over the pool", () => {
    // 37 and 5: a scalar tail; 40000: three pieces
    const sizes = [37, 5, 40000, SUM_PIECE];
    const grads = sizes.map((n, k) => random(n, 90 + k, 3));
    let want = 0;
    for (const g of grads) for (let off = 0; off < g.length; off += SUM_PIECE) want += sumOfSquaresInLanes(g.subarray(off, off + SUM_PIECE));
    expect(want / sumOfSquares(grads)).toBeCloseTo(1, 12);
    for (const c of hosts()) {
      const sums = new CoreSumOfSquares(c, sizes);
      const ptrs = grads.map((g) => c.arena.put(g));
      try {
        expect(sums.of(ptrs)).toBe(want);
        expect(sums.of(ptrs)).toBe(want);
      } finally {
        sums.dispose();
        for (const p of ptrs) c.arena.release(p);
      }
    }
  });
  it("AdamW in the core (train_adamw through AdamWF32.stepInCore) is AdamWF32.step bit for bit, moments included", () => {
    // four-wide passes with a scalar tail of one value (37, 5, 129), and a tail alone (2)
    const sizes = [37, 5, 129, 2];
    const opts = { lr: 3e-3, totalSteps: 20, warmupSteps: 2, weightDecay: 0.1, maxGradNorm: 0.5 };
    const a = new AdamWF32(sizes, opts), b = new AdamWF32(sizes, opts);
    const params = sizes.map((n, k) => random(n, 50 + k));
    const ptrs = params.map((p) => core.arena.put(p)), gptrs = sizes.map((n) => core.arena.alloc(4 * n));
    const scratch = { m: core.arena.alloc(4 * 129), v: core.arena.alloc(4 * 129) };
    try {
      for (let step = 0; step < 4; step++) {
        const grads = sizes.map((n, k) => random(n, 60 + 7 * step + k, 3));
        grads.forEach((g, k) => core.arena.f32(gptrs[k], g.length).set(g));
        const ra = a.step(params, grads), rb = b.stepInCore(core, ptrs, gptrs, scratch, sumOfSquares(grads));
        expect(rb).toEqual(ra);
      }
      params.forEach((p, k) => expect(new Uint32Array(core.arena.f32(ptrs[k], p.length).slice().buffer)).toEqual(new Uint32Array(p.slice().buffer)));
      a.state.m.forEach((m, k) => expect(b.state.m[k]).toEqual(m));
      a.state.v.forEach((v, k) => expect(b.state.v[k]).toEqual(v));
    } finally {
      for (const p of [...ptrs, ...gptrs, scratch.m, scratch.v]) core.arena.release(p);
    }
  });
});
