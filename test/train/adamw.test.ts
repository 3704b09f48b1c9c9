// AdamW of the training reference: schedule, clipping, one step by hand, and decay of a quadratic.
import { describe, expect, it } from "vitest";
import { AdamW, clipGradients, globalNorm, learningRate } from "../../src/train/reference/adamw.js";

describe("AdamW (f64 reference)", () => {
  it("warms up linearly, then follows a half cosine from lr to minLr", () => {
    const o = { lr: 0.1, warmupSteps: 4, totalSteps: 14, minLr: 0.01 };
    [0.025, 0.05, 0.075, 0.1].forEach((lr, s) => expect(learningRate(o, s)).toBeCloseTo(lr, 15));
    expect(learningRate(o, 4)).toBeCloseTo(0.1, 15);
    expect(learningRate(o, 9)).toBeCloseTo(0.055, 15); // half way: the mean of lr and minLr
    expect(learningRate(o, 14)).toBeCloseTo(0.01, 15);
    expect(learningRate(o, 20)).toBeCloseTo(0.01, 15); // past the end it stays at minLr
    expect(learningRate({ lr: 0.1, totalSteps: 10 }, 0)).toBe(0.1); // no warm-up: starts at the peak
  });

  it("clips by global norm as torch's clip_grad_norm_ and leaves small gradients alone", () => {
    const g = [Float64Array.from([3, 0]), Float64Array.from([0, 4])];
    expect(clipGradients(g, 1)).toBe(5);
    expect(globalNorm(g)).toBeCloseTo(5 / (5 + 1e-6), 12);
    const small = [Float64Array.from([0.3, 0.4])];
    expect(clipGradients(small, 1)).toBeCloseTo(0.5, 15);
    expect([...small[0]]).toEqual([0.3, 0.4]);
  });

  it("takes the documented step: decoupled decay, bias-corrected moments", () => {
    const p = Float64Array.from([1, -2]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5, totalSteps: 10, beta1: 0.9, beta2: 0.99, eps: 1e-8 });
    const r = opt.step([Float64Array.from([0.2, -0.4])]);
    expect(r.step).toBe(0);
    expect(r.lr).toBe(0.1);
    expect(r.gradNorm).toBeCloseTo(Math.sqrt(0.2), 15);
    // first step: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) after p *= 1 - lr * wd
    expect(p[0]).toBeCloseTo(1 * 0.95 - 0.1 * (0.2 / (0.2 + 1e-8)), 14);
    expect(p[1]).toBeCloseTo(-2 * 0.95 + 0.1 * (0.4 / (0.4 + 1e-8)), 14);
    expect(opt.steps).toBe(1);
    expect(opt.m[0][0]).toBeCloseTo(0.02, 15);
    expect(opt.v[0][1]).toBeCloseTo(0.01 * 0.16, 15);
  });

  it("minimizes a quadratic", () => {
    const p = Float64Array.from([3, -1, 2]);
    const target = [0.5, 0.25, -1];
    const opt = new AdamW([p], { lr: 0.05, warmupSteps: 5, totalSteps: 400, maxGradNorm: 1 });
    for (let s = 0; s < 400; s++) opt.step([p.map((x, i) => 2 * (x - target[i]))]);
    for (let i = 0; i < 3; i++) expect(Math.abs(p[i] - target[i])).toBeLessThan(1e-3);
  });

  it("refuses a learning rate that is not a finite positive number", () => {
    expect(() => new AdamW([], { lr: NaN, totalSteps: 1 })).toThrow(/learning rate/);
    expect(() => new AdamW([], { lr: Infinity, totalSteps: 1 })).toThrow(/learning rate/);
    expect(() => new AdamW([], { lr: 0.1, totalSteps: 0 })).toThrow(/total steps/);
  });
});
