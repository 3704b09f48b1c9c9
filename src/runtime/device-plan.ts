// Runtime.open's `device` option: a device profile's memory plan decides GPU layers, threads, context size and GPU API.
import type { GpuChoice } from "../backends/backend.js";
import type { GgufFile } from "../gguf/reader.js";
import { gatherFacts, type SystemFacts } from "../devices/facts.js";
import { planWithFacts, type MemoryPlan } from "../devices/plan.js";

export interface DevicePlanRequest {
  /** "auto" detects this machine's profile; any other string names a profile in devices/. */
  device: string;
  base: GgufFile;
  /** Facts to plan with instead of this machine's (recorded facts, or planning for another device). */
  facts?: SystemFacts;
  /** Explicit settings win over the profile's defaults. */
  contextSize?: number;
  threads?: number;
  gpuLayers?: number;
  gpu?: GpuChoice;
}

export interface AppliedDevicePlan {
  plan: MemoryPlan;
  threads: number;
  contextSize: number;
  gpuLayers: number;
  gpu: GpuChoice;
}

/**
 * Plans the base model on the device before anything is loaded: throws DoesNotFitError (with the largest
 * context that would fit) when it cannot run there, else returns the settings to open the backend with.
 */
export async function applyDevicePlan(r: DevicePlanRequest): Promise<AppliedDevicePlan> {
  const facts = r.facts ?? await gatherFacts();
  const plan = planWithFacts({
    model: r.base,
    profile: r.device === "auto" ? undefined : r.device,
    contextSize: r.contextSize,
    threads: r.threads,
    gpuLayers: r.gpuLayers,
  }, facts);
  const planned: GpuChoice = plan.backend === "cpu" ? false : plan.backend as GpuChoice;
  return { plan, threads: plan.threads, contextSize: plan.contextSize, gpuLayers: plan.gpuLayers, gpu: r.gpu ?? planned };
}
