// The training engine: the frozen base and a trainable adapter in the wasm core, the forward and backward passes, AdamW in f32.
export { loadFrozenBase, freeFrozenBase, type FrozenBase, type BaseLayer, type FileRows } from "./base.js";
export { TrainableAdapter, f32Matrix, type TrainPair, type SeededStart } from "./adapter.js";
export { TrainingEngine, type EngineOptions } from "./trainer.js";
export { AdamWF32, CoreSumOfSquares, sumOfSquares, sumOfSquaresInLanes, type AdamWState, type AdamWOptions, type StepReport } from "./adamw.js";
