// detect(): picks the device profile that matches the system facts, and says why.
import { LoraEdgeError } from "../errors.js";

import { gatherFacts, liveSource, type FactsSource, type SystemFacts } from "./facts.js";
import { loadProfiles, type DeviceProfile, type MatchRule } from "./profiles.js";

export interface Detection {
  profile: DeviceProfile;
  facts: SystemFacts;
  /** The conditions of the rule that matched, in words. */
  reasons: string[];
  /** Threads to use by default on this device. */
  threads: number;
  /** Other profiles that also matched, by priority. */
  alsoMatched: string[];
  /** Things to fix before the profile's backend can be used (e.g. a missing CUDA build). */
  warnings: string[];
  /** What else was found and why it is not used (e.g. a CPU-type Vulkan device), or why an unusual device is. */
  notes: string[];
}

/** No profile matched (only possible with a custom profile folder without generic fallbacks). */
export class NoProfileError extends LoraEdgeError {
  constructor(readonly facts: SystemFacts) {
    super("NO_PROFILE", `no device profile matches ${facts.os}/${facts.arch} (${facts.cpu.model})`);
  }
}

const has = (hay: string | undefined, needle: string) => !!hay && hay.toLowerCase().includes(needle.toLowerCase());

/** The reasons a rule holds for these facts, or undefined when it does not. */
export function matchRule(rule: MatchRule, f: SystemFacts): string[] | undefined {
  const why: string[] = [];
  if (rule.os) { if (!rule.os.includes(f.os)) return undefined; why.push(`os ${f.os}`); }
  if (rule.arch) { if (!rule.arch.includes(f.arch)) return undefined; why.push(`arch ${f.arch}`); }
  if (rule.deviceTreeModel !== undefined) {
    if (!has(f.deviceTreeModel, rule.deviceTreeModel)) return undefined;
    why.push(`device-tree model "${f.deviceTreeModel}"`);
  }
  if (rule.socModel !== undefined) {
    if (!has(f.socModel, rule.socModel)) return undefined;
    why.push(`module ${f.socModel}`);
  }
  if (rule.nvTegraRelease !== undefined) {
    if (rule.nvTegraRelease !== (f.nvTegraRelease !== undefined)) return undefined;
    why.push(rule.nvTegraRelease ? `L4T ${f.l4t ?? f.nvTegraRelease}` : "no L4T");
  }
  if (rule.nvidiaDriver !== undefined) {
    if (rule.nvidiaDriver !== (f.nvidiaDriver !== undefined)) return undefined;
    why.push(rule.nvidiaDriver ? "NVIDIA driver loaded" : "no NVIDIA driver");
  }
  if (rule.gpuType) {
    if (f.gpu.type === false || !rule.gpuType.includes(f.gpu.type)) return undefined;
    why.push(`GPU ${f.gpu.type}${f.gpu.devices.length ? ` (${f.gpu.devices.join(", ")})` : ""}`);
  }
  if (rule.cpuModel !== undefined) {
    if (!has(f.cpu.model, rule.cpuModel)) return undefined;
    why.push(`CPU ${f.cpu.model}`);
  }
  return why;
}

/** Threads a profile asks for on these facts. */
export function defaultThreads(profile: DeviceProfile, f: SystemFacts): number {
  const t = profile.defaults.threads;
  if (typeof t === "number") return Math.max(1, Math.min(t, f.cpu.logicalCores));
  if (t === "performance-cores") return Math.max(1, f.cpu.performanceCores ?? f.cpu.physicalCores);
  return Math.max(1, f.cpu.physicalCores);
}

/** Devices found but not used, and software devices used because they were asked for. */
function gpuNotes(f: SystemFacts): string[] {
  const notes = (f.gpu.skipped ?? []).map((d) => `found ${d.api} device ${d.index} "${d.name}", not used: ${d.reason}`);
  if (f.gpu.softwareDevice) {
    notes.push(`${f.gpu.devices.join(", ")} is a CPU-type ${f.gpu.type} device (a software renderer), in use because it was asked for; ` +
      "it is slower than llama.cpp's CPU backend");
  }
  return notes;
}

/** Picks a profile for already gathered facts. */
export function detectFromFacts(facts: SystemFacts, profiles: DeviceProfile[] = loadProfiles()): Detection {
  const hits: { profile: DeviceProfile; reasons: string[] }[] = [];
  for (const p of profiles) {
    for (const rule of p.match) {
      const why = matchRule(rule, facts);
      if (why) { hits.push({ profile: p, reasons: why }); break; }
    }
  }
  hits.sort((a, b) => b.profile.priority - a.profile.priority || a.profile.name.localeCompare(b.profile.name));
  if (hits.length === 0) throw new NoProfileError(facts);
  const best = hits[0];
  const p = best.profile;
  const warnings: string[] = [];
  if (p.gpu !== false && facts.gpu.type !== p.gpu) {
    warnings.push(`profile ${p.name} uses ${p.gpu}, but node-llama-cpp found ${facts.gpu.type || "no GPU backend"}` +
      `${facts.gpu.error ? ` (${facts.gpu.error})` : ""}; until that is fixed it runs on the CPU. ${p.build.summary}`);
  }
  return { profile: p, facts, reasons: best.reasons, threads: defaultThreads(p, facts),
    alsoMatched: hits.slice(1).map((h) => h.profile.name), warnings, notes: gpuNotes(facts) };
}

/** Gathers facts from a source (default: this machine) and picks a profile. */
export async function detect(source: FactsSource = liveSource(), profiles?: DeviceProfile[]): Promise<Detection> {
  return detectFromFacts(await gatherFacts(source), profiles);
}
