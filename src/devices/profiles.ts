// Device profiles: the types of devices/*.json, a validating loader, and lookup by name.
import { LoraEdgeError } from "../errors.js";

import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../paths.js";

export type GpuKind = "metal" | "cuda" | "vulkan" | false;
export type MemoryModel = "unified" | "discrete" | "cpu";
export type ThreadsRule = number | "physical-cores" | "performance-cores";

/** One recognition rule: every condition present must hold. A profile matches when any rule does. */
export interface MatchRule {
  os?: string[];
  arch?: string[];
  /** Substring (case-insensitive) of /proc/device-tree/model. */
  deviceTreeModel?: string;
  /** /etc/nv_tegra_release must exist (true) or must not (false). */
  nvTegraRelease?: boolean;
  /** Substring (case-insensitive) of the SoC/board name derived from other facts (Jetson without a device tree). */
  socModel?: string;
  /** GPU type node-llama-cpp found. */
  gpuType?: Exclude<GpuKind, false>[];
  /** An NVIDIA kernel driver is loaded (/proc/driver/nvidia/version). */
  nvidiaDriver?: boolean;
  /** Substring (case-insensitive) of the CPU model name. */
  cpuModel?: string;
}

export interface PowerMode {
  name: string;
  nvpmodel: number;
  note?: string;
}

export interface DeviceProfile {
  schemaVersion: 1;
  name: string;
  title: string;
  /** Higher wins when several profiles match. */
  priority: number;
  match: MatchRule[];
  backend: "native" | "wasm";
  gpu: GpuKind;
  memory: {
    model: MemoryModel;
    /** Bytes left for the OS and other programs. */
    reserveBytes: number;
    /** Memory of the device the profile describes (its common smaller model): what `devices --profile` plans against. */
    referenceBytes?: number;
    /** Discrete GPUs: VRAM of that reference device. */
    referenceVramBytes?: number;
    /** Unified memory: share of total RAM the GPU may map (Metal's working-set limit). */
    gpuShareOfTotal?: number;
    /** Discrete memory: VRAM kept free for the driver and display. */
    gpuReserveBytes?: number;
    notes?: string;
  };
  defaults: {
    threads: ThreadsRule;
    contextSize: number;
    batchSize: number;
    gpuLayers: number | "max" | "fit";
    flashAttention: boolean;
  };
  build: { prebuilt: boolean; summary: string; requires?: string[]; env?: Record<string, string>;
    cmakeOptions?: Record<string, string>; commands: string[]; notes?: string[] };
  powerModes?: PowerMode[];
  powerNotes?: string;
  /** Where it was loaded from. */
  file?: string;
}

/** A profile file is malformed: names the file and the field. */
export class ProfileError extends LoraEdgeError {
  constructor(readonly file: string, readonly field: string, message: string) {
    super("PROFILE", `${file}: ${field}: ${message}`);
  }
}

/** The devices/ folder shipped in the package. */
export function profilesDir(): string {
  const dir = path.join(packageRoot(), "devices");
  if (!existsSync(dir)) throw new ProfileError(dir, "(folder)", "profile folder not found in the package");
  return dir;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates a parsed profile object; throws ProfileError naming the first bad field. */
export function validateProfile(raw: unknown, file: string): DeviceProfile {
  const fail = (field: string, msg: string): never => { throw new ProfileError(file, field, msg); };
  if (!isObj(raw)) fail("(root)", "must be an object");
  const p = raw as Obj;
  if (p.schemaVersion !== 1) fail("schemaVersion", `must be 1, got ${JSON.stringify(p.schemaVersion)}`);
  const str = (o: Obj, k: string, where: string) => {
    if (typeof o[k] !== "string" || (o[k] as string).length === 0) fail(where + k, "must be a non-empty string");
  };
  const num = (o: Obj, k: string, where: string, min = 0) => {
    if (typeof o[k] !== "number" || !Number.isFinite(o[k] as number) || (o[k] as number) < min)
      fail(where + k, `must be a number >= ${min}`);
  };
  str(p, "name", "");
  if (!/^[a-z0-9][a-z0-9-]*$/.test(p.name as string)) fail("name", "must be lower-case kebab-case");
  str(p, "title", "");
  num(p, "priority", "");
  if (!Array.isArray(p.match) || p.match.length === 0) fail("match", "must be a non-empty array of rules");
  const ruleKeys = new Set(["os", "arch", "deviceTreeModel", "nvTegraRelease", "socModel", "gpuType", "nvidiaDriver", "cpuModel"]);
  (p.match as unknown[]).forEach((r, i) => {
    const where = `match[${i}]`;
    if (!isObj(r) || Object.keys(r).length === 0) fail(where, "must be a non-empty object");
    for (const [k, v] of Object.entries(r as Obj)) {
      if (!ruleKeys.has(k)) fail(`${where}.${k}`, "unknown condition");
      if (["os", "arch", "gpuType"].includes(k)) {
        if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) fail(`${where}.${k}`, "must be a non-empty string array");
        if (k === "gpuType" && !(v as string[]).every((x) => ["metal", "cuda", "vulkan"].includes(x)))
          fail(`${where}.${k}`, "must list metal, cuda or vulkan");
      } else if (["nvTegraRelease", "nvidiaDriver"].includes(k)) {
        if (typeof v !== "boolean") fail(`${where}.${k}`, "must be a boolean");
      } else if (typeof v !== "string" || v.length === 0) fail(`${where}.${k}`, "must be a non-empty string");
    }
  });
  if (p.backend !== "native" && p.backend !== "wasm") fail("backend", "must be native or wasm");
  if (!["metal", "cuda", "vulkan", false].includes(p.gpu as never)) fail("gpu", "must be metal, cuda, vulkan or false");
  if (!isObj(p.memory)) fail("memory", "must be an object");
  const m = p.memory as Obj;
  if (!["unified", "discrete", "cpu"].includes(m.model as string)) fail("memory.model", "must be unified, discrete or cpu");
  num(m, "reserveBytes", "memory.");
  if (m.model === "unified") {
    num(m, "gpuShareOfTotal", "memory.");
    if ((m.gpuShareOfTotal as number) > 1) fail("memory.gpuShareOfTotal", "must be <= 1");
  }
  if (m.gpuShareOfTotal !== undefined) num(m, "gpuShareOfTotal", "memory.");
  if (m.gpuReserveBytes !== undefined) num(m, "gpuReserveBytes", "memory.");
  if (m.referenceBytes !== undefined) num(m, "referenceBytes", "memory.", 1);
  if (m.referenceVramBytes !== undefined) num(m, "referenceVramBytes", "memory.", 1);
  if ((m.model === "cpu") !== (p.gpu === false)) fail("memory.model", "must be cpu exactly when gpu is false");
  if (!isObj(p.defaults)) fail("defaults", "must be an object");
  const d = p.defaults as Obj;
  if (!(typeof d.threads === "number" && Number.isInteger(d.threads) && d.threads > 0) &&
      d.threads !== "physical-cores" && d.threads !== "performance-cores")
    fail("defaults.threads", "must be a positive integer, physical-cores or performance-cores");
  num(d, "contextSize", "defaults.", 16);
  num(d, "batchSize", "defaults.", 1);
  if (!(typeof d.gpuLayers === "number" && d.gpuLayers >= 0) && d.gpuLayers !== "max" && d.gpuLayers !== "fit")
    fail("defaults.gpuLayers", "must be a number >= 0, max or fit");
  if (p.gpu === false && d.gpuLayers !== 0) fail("defaults.gpuLayers", "must be 0 without a GPU");
  if (typeof d.flashAttention !== "boolean") fail("defaults.flashAttention", "must be a boolean");
  if (!isObj(p.build)) fail("build", "must be an object");
  const b = p.build as Obj;
  if (typeof b.prebuilt !== "boolean") fail("build.prebuilt", "must be a boolean");
  str(b, "summary", "build.");
  if (!Array.isArray(b.commands) || b.commands.length === 0 || !b.commands.every((c) => typeof c === "string"))
    fail("build.commands", "must be a non-empty string array");
  if (p.powerModes !== undefined) {
    if (!Array.isArray(p.powerModes) || p.powerModes.length === 0) fail("powerModes", "must be a non-empty array");
    (p.powerModes as unknown[]).forEach((pm, i) => {
      if (!isObj(pm)) fail(`powerModes[${i}]`, "must be an object");
      str(pm as Obj, "name", `powerModes[${i}].`);
      num(pm as Obj, "nvpmodel", `powerModes[${i}].`);
    });
  }
  return { ...(p as unknown as DeviceProfile), file };
}

/** Reads and validates one profile file. */
export function loadProfileFile(file: string): DeviceProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ProfileError(file, "(file)", `cannot read JSON: ${(e as Error).message}`);
  }
  const p = validateProfile(raw, file);
  const base = path.basename(file, ".json");
  if (p.name !== base) throw new ProfileError(file, "name", `must equal the file name "${base}"`);
  return p;
}

const cache = new Map<string, DeviceProfile[]>();

/** All profiles in a folder (default: the shipped devices/), sorted by priority, highest first. */
export function loadProfiles(dir: string = profilesDir()): DeviceProfile[] {
  const hit = cache.get(dir);
  if (hit) return hit;
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  const list = files.map((f) => loadProfileFile(path.join(dir, f)));
  list.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  cache.set(dir, list);
  return list;
}

/** The profile with this name; throws ProfileError listing the known names. */
export function getProfile(name: string, dir?: string): DeviceProfile {
  const all = loadProfiles(dir);
  const p = all.find((x) => x.name === name);
  if (!p) throw new ProfileError(name, "name", `no such device profile; known: ${all.map((x) => x.name).join(", ")}`);
  return p;
}
