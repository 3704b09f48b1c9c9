// Test helper: the PyTorch reference fixture for stories260K with a rank-4 adapter (settings and figures in JSON, gradients and values in f32).
import { readFileSync } from "node:fs";
import type { Target } from "../../src/train/reference/lora.js";
import { fixture } from "../fixtures.js";

export interface TorchReference {
  rank: number; alpha: number; seed: number; a_range: number; b_range: number; targets: Target[];
  first_a_value: number; tokens: number[]; loss_mask: boolean[];
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; warmup_steps: number; total_steps: number; min_lr: number; max_grad_norm: number };
  loss: number; steps: { loss: number; lr: number; grad_norm: number }[]; loss_after_steps: number;
  values: number; tensors: { name: string; shape: number[]; offset: number }[];
}

export const torchRef = JSON.parse(readFileSync(fixture("train/stories260K-lora-r4-torch.json"), "utf8")) as TorchReference;

const bin = readFileSync(fixture("train/stories260K-lora-r4-torch.f32"));
/** Every stored f32 value: all tensors' gradients at the start, then all their values after the steps. */
export const torchStored = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));

/** The stored values of tensor k: its gradient at the start (part 0) or its value after the steps (part 1). */
export function storedTensor(k: number, part: 0 | 1): Float32Array {
  const t = torchRef.tensors[k], at = part * torchRef.values + t.offset;
  return torchStored.subarray(at, at + t.shape[0] * t.shape[1]);
}
