// Public surface of the runtime: Runtime, sessions, pools, generation types.
export { Runtime, CONTEXT_SIZE_LIMITS, type RuntimeOptions, type RuntimeStats, type RuntimeTrainOptions } from "./runtime.js";
export { Session, type GenerateOptions, type SessionOptions } from "./session.js";
export { SessionPool, PoolSession, type PoolOptions } from "./pool.js";
export { Scheduler, type SchedulerOptions, type ScheduleOptions, type SchedulerStats } from "./scheduler.js";
export { Generation, type GenerationResult, type GenerationTimings, type FinishReason } from "./generation.js";
export type { AdapterPath } from "./kv-plan.js";
export { AdapterRegistry, type AdapterInfo, type AdapterLoadOptions } from "./adapters.js";
export { adapterSetKey, normalizeAdapterSet, type AdapterSetInput, type AdapterSet } from "./adapter-set.js";
export { defaultModelPath, demoAdapterPaths } from "../paths.js";
export { ChatTemplate, type ChatMessage } from "./chat-template.js";
