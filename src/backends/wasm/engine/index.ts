// The wasm inference engine: model, contexts, adapters and sampling over the wasm core (no host file or process API).
export { EngineModel } from "./model.js";
export { EngineContext } from "./context.js";
export type { ActiveEngineAdapter } from "./context.js";
export { EngineAdapter } from "./adapters.js";
export type { AdapterPrecision } from "./adapters.js";
export { readConfig, supportedArchitectures, EngineConfigError } from "./config.js";
export type { EngineConfig, ModelSource, TensorEntry } from "./config.js";
export { sampleToken, argmax } from "./sampling.js";
export type { SamplingParams } from "./sampling.js";
export { KvCache } from "./kv-cache.js";
export type { WeightOptions } from "./weights.js";
