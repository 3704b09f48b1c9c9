// The training reference against PyTorch (float64 autograd, torch.optim.AdamW) on stories260K F32 with a rank-4 adapter: loss, gradients, 10 steps.
import { describe, expect, it } from "vitest";
import { openGguf } from "../../src/gguf/reader.js";
import { AdamW } from "../../src/train/reference/adamw.js";
import { gradientList, loraParameters, seededLora, TARGETS } from "../../src/train/reference/lora.js";
import { loadReferenceModel, loss, lossAndGradients } from "../../src/train/reference/model.js";
import { fixture } from "../fixtures.js";
import { storedTensor, torchRef, torchStored } from "./torch-fixture.js";
import { normwiseError } from "./helpers.js";

const ref = torchRef;
const stored = torchStored;
const model = loadReferenceModel(openGguf(fixture("models/stories260K.gguf")));
const batch = [{ tokens: ref.tokens, lossMask: ref.loss_mask }];

const freshLora = () => seededLora(model.config, { rank: ref.rank, alpha: ref.alpha, seed: ref.seed, aRange: ref.a_range, bRange: ref.b_range, targets: ref.targets });

/** The worst per-tensor normwise error of ours against the stored tensors. */
function worstTensorError(ours: readonly Float64Array[], part: 0 | 1): number {
  expect(ours.length).toBe(ref.tensors.length);
  return Math.max(...ours.map((x, k) => normwiseError(x, storedTensor(k, part))));
}

describe("training reference against PyTorch (stories260K F32, rank 4 on all 7 projections)", () => {
  it("the fixture is what the script describes: the same seeded start, every tensor in the adapter's order", () => {
    const lora = freshLora();
    expect(ref.targets).toEqual([...TARGETS]);
    expect(ref.tensors.map((t) => t.name)).toEqual([...lora.pairs.keys()].flatMap((k) => [`${k}.lora_a`, `${k}.lora_b`]));
    expect(stored.length).toBe(2 * ref.values);
    expect(lora.pairs.get("blk.0.attn_q.weight")!.a[0]).toBe(ref.first_a_value);
  });

  // Both sides compute in f64 (summed in different orders); the stored gradients are rounded to f32 (2^-24 relative).
  // Measured: loss 1.1e-15 relative, gradients 5.4e-8 normwise per tensor (the f32 rounding). Bounds: 1e-12 and 1e-6.
  it("loss and every A and B gradient at the start", () => {
    const lora = freshLora();
    const r = lossAndGradients(model, lora, batch);
    expect(Math.abs(r.loss - ref.loss) / ref.loss).toBeLessThanOrEqual(1e-12);
    expect(r.tokens).toBe(ref.loss_mask.filter(Boolean).length);
    expect(worstTensorError(gradientList(lora, r.grads), 0)).toBeLessThanOrEqual(1e-6);
  });

  // AdamW divides by sqrt(v): entries with tiny gradients move by about lr whatever their size, so differences in the
  // last bits of a gradient could grow over the steps. Measured: per-step losses and gradient norms within 1.1e-13
  // relative, values after 10 steps 5.4e-8 normwise per tensor (the f32 rounding of the stored values). Bounds: 1e-9
  // and 1e-6.
  it("10 AdamW steps (warm-up, cosine, clipping, weight decay): the same rates, norms, losses and final A and B", () => {
    const lora = freshLora();
    const o = ref.adamw;
    const params = loraParameters(lora);
    const opt = new AdamW(params, {
      lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay,
      warmupSteps: o.warmup_steps, totalSteps: o.total_steps, minLr: o.min_lr, maxGradNorm: o.max_grad_norm,
    });
    ref.steps.forEach((want, s) => {
      const r = lossAndGradients(model, lora, batch);
      const step = opt.step(gradientList(lora, r.grads));
      expect(Math.abs(r.loss - want.loss) / want.loss, `loss of step ${s}`).toBeLessThanOrEqual(1e-9);
      expect(step.lr, `rate of step ${s}`).toBeCloseTo(want.lr, 15);
      expect(Math.abs(step.gradNorm - want.grad_norm) / want.grad_norm, `norm of step ${s}`).toBeLessThanOrEqual(1e-9);
    });
    // clipping was active in some steps and not in others, and the loss fell
    expect(ref.steps.some((s) => s.grad_norm > o.max_grad_norm) && ref.steps.some((s) => s.grad_norm < o.max_grad_norm)).toBe(true);
    expect(worstTensorError(params, 1)).toBeLessThanOrEqual(1e-6);
    const after = loss(model, lora, batch);
    expect(Math.abs(after - ref.loss_after_steps) / ref.loss_after_steps).toBeLessThanOrEqual(1e-9);
    expect(after).toBeLessThan(ref.loss / 10);
  });
});
