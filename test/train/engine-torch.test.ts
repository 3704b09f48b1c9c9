// The f32 training engine against PyTorch (float64 autograd, torch.optim.AdamW) on stories260K F32, rank 4: loss, gradients, and A and B after 10 AdamW steps.
import { beforeAll, describe, expect, it } from "vitest";
import { loadCore, type Core } from "../../src/core/index.js";
import { openGguf } from "../../src/gguf/reader.js";
import { referenceConfig } from "../../src/train/reference/config.js";
import { seededLora } from "../../src/train/reference/lora.js";
import { AdamWF32, loadFrozenBase, TrainableAdapter, TrainingEngine } from "../../src/train/engine/index.js";
import { fixture } from "../fixtures.js";
import { storedTensor, torchRef } from "./torch-fixture.js";
import { normwiseError } from "./helpers.js";

const ref = torchRef;

let core: Core;
beforeAll(async () => {
  core = await loadCore();
});

function setup() {
  const gguf = openGguf(fixture("models/stories260K.gguf"));
  const base = loadFrozenBase(core, gguf);
  const lora = seededLora(referenceConfig(gguf), { rank: ref.rank, alpha: ref.alpha, seed: ref.seed, aRange: ref.a_range, bRange: ref.b_range, targets: ref.targets });
  const adapter = new TrainableAdapter(core, base.config, lora);
  const engine = new TrainingEngine(core, base, adapter, { maxTokens: ref.tokens.length });
  return { adapter, engine, batch: [{ tokens: ref.tokens, lossMask: ref.loss_mask }] };
}

describe("training engine against PyTorch (stories260K F32, rank 4 on all 7 projections)", () => {
  // f32 against float64: measured loss 7e-8 relative, gradients 8e-6 normwise per tensor. Bounds 1e-6 and 1e-4.
  it("loss and every A and B gradient at the start", () => {
    const { adapter, engine, batch } = setup();
    const r = engine.lossAndGradients(batch);
    expect(Math.abs(r.loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
    const g = adapter.gradients();
    expect(g.length).toBe(ref.tensors.length);
    expect(Math.max(...g.map((x, k) => normwiseError(x, storedTensor(k, 0))))).toBeLessThan(1e-4);
  });

  // Ten steps of f32 AdamW: per-step losses and norms measured within 2e-6 relative, A and B after the steps 1.4e-5
  // normwise per tensor (Adam's division by sqrt(v) lifts small gradient differences to about lr). Bounds 1e-4 and 1e-3.
  it("10 AdamW steps (warm-up, cosine, clipping, weight decay): the same losses, norms and final A and B", () => {
    const { adapter, engine, batch } = setup();
    const o = ref.adamw;
    const opt = new AdamWF32(adapter.parameters().map((p) => p.length), {
      lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay,
      warmupSteps: o.warmup_steps, totalSteps: o.total_steps, minLr: o.min_lr, maxGradNorm: o.max_grad_norm,
    });
    ref.steps.forEach((want, s) => {
      const r = engine.lossAndGradients(batch);
      const step = opt.step(adapter.parameters(), adapter.gradients());
      expect(Math.abs(r.loss - want.loss) / want.loss, `loss of step ${s}`).toBeLessThan(1e-4);
      expect(step.lr, `rate of step ${s}`).toBeCloseTo(want.lr, 12);
      expect(Math.abs(step.gradNorm - want.grad_norm) / want.grad_norm, `norm of step ${s}`).toBeLessThan(1e-4);
    });
    const params = adapter.parameters();
    const worst = Math.max(...params.map((x, k) => normwiseError(x, storedTensor(k, 1))));
    expect(worst).toBeLessThan(1e-3);
    const after = engine.loss(batch).loss;
    expect(Math.abs(after - ref.loss_after_steps) / ref.loss_after_steps).toBeLessThan(1e-3);
  });
});
