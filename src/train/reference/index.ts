// The f64 scalar reference of LoRA training: what the training kernels and the trainer are checked against.
export { referenceConfig, trainableArchitectures, type ReferenceConfig } from "./config.js";
export { loadBaseWeights, tensorValues, type BaseWeights, type LayerWeights, type Mat } from "./weights.js";
export {
  TARGETS, TARGET_TENSOR, baseTensorName, targetDims, seededLora, loraFromGguf, zeroGradients, loraParameters, gradientList,
  type Target, type LoraPair, type LoraAdapter, type LoraGradients, type SeededLoraOptions,
} from "./lora.js";
export { loadReferenceModel, forward, backward, logits, loss, lossAndGradients, type ReferenceModel, type TrainSequence } from "./model.js";
export type { RunState, LayerActivations } from "./run-state.js";
export { AdamW, learningRate, clipGradients, globalNorm, type AdamWOptions, type StepReport } from "./adamw.js";
export { matmul, matmulBackwardInput, matmulBackwardWeight } from "./matmul.js";
export { linear, linearBackward } from "./linear.js";
export { rmsnorm, rmsnormBackward } from "./rmsnorm.js";
export { rope, ropeBackward, type RopeParams } from "./rope.js";
export { attention, attentionBackward, type AttentionShape } from "./attention.js";
export { swiglu, swigluBackward } from "./swiglu.js";
export { crossEntropy, crossEntropyBackward } from "./cross-entropy.js";
