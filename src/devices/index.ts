// Public surface of device support: profiles, detection from system facts, and memory planning.
export { loadProfiles, getProfile, loadProfileFile, validateProfile, profilesDir, ProfileError } from "./profiles.js";
export type { DeviceProfile, MatchRule, PowerMode, GpuKind, MemoryModel, ThreadsRule } from "./profiles.js";
export { gatherFacts, liveSource, recordedSource, recordFacts, probeGpu } from "./facts.js";
export type { FactsSource, FactsRecording, SystemFacts, GpuFacts } from "./facts.js";
export { usableCores } from "./cores.js";
export { detect, detectFromFacts, defaultThreads as profileThreads, NoProfileError } from "./detect.js";
export type { Detection } from "./detect.js";
export { plan, planWithFacts, computeBufferBytes, DoesNotFitError } from "./plan.js";
export type { PlanInput, MemoryPlan, PlanBytes } from "./plan.js";
