// System facts for device detection, gathered from an injectable source (the live system or a recording).

import os from "node:os";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import type { GpuKind } from "./profiles.js";
import { isSoftwareVulkanName, probeVulkanDevices, VULKAN_VISIBLE_DEVICES } from "./vulkan.js";

/** A GPU device that was found but is not used, and why. */
export interface SkippedGpuDevice {
  api: "vulkan";
  /** Its index for GGML_VK_VISIBLE_DEVICES. */
  index: number;
  name: string;
  /** A CPU-type Vulkan device (software renderer: lavapipe, SwiftShader). */
  cpuType: boolean;
  reason: string;
}

/** What node-llama-cpp found: GPU type, device names, VRAM (bytes). */
export interface GpuFacts {
  type: GpuKind;
  devices: string[];
  vram?: { total: number; used: number; free: number; unifiedSize: number };
  /** Why no GPU backend loaded, when one was expected. */
  error?: string;
  /** The devices in use are CPU-type Vulkan devices, visible only because GGML_VK_VISIBLE_DEVICES names them. */
  softwareDevice?: boolean;
  /** Devices found but not used (ggml skips CPU-type Vulkan devices unless asked for them). */
  skipped?: SkippedGpuDevice[];
}

/** Why a CPU-type Vulkan device is not chosen automatically. */
export const SOFTWARE_VULKAN_REASON = "a CPU-type Vulkan device (a software renderer): slower than llama.cpp's CPU backend, so it is used " +
  `only when asked for (gpu "vulkan" with ${VULKAN_VISIBLE_DEVICES} naming it)`;

/** Raw system reads; the live system and recorded fact files both implement it. */
export interface FactsSource {
  readonly label: string;
  platform(): string;
  arch(): string;
  release(): string;
  /** CPU model as the OS reports it and the logical CPU count. */
  cpus(): { model: string; count: number };
  totalMemory(): number;
  freeMemory(): number;
  /** Text of a system file, or undefined when absent. */
  readFile(file: string): string | undefined;
  /** A sysctl value (macOS), or undefined. */
  sysctl(name: string): string | undefined;
  gpu(): Promise<GpuFacts>;
  nodeVersion(): string;
}

/** A recorded fact file (test/fixtures/facts/*.json, or `lora-edge devices --record`). */
export interface FactsRecording {
  recordingVersion: 1;
  label: string;
  /** The profile detect() must pick (tests only). */
  expectedProfile?: string;
  os: { platform: string; arch: string; release: string; cpuModel: string; cpuCount: number;
    totalmem: number; freemem: number; node: string };
  files: Record<string, string>;
  sysctl?: Record<string, string>;
  gpu: GpuFacts;
}

/** Facts in normalized form, as detect() and plan() use them. */
export interface SystemFacts {
  source: string;
  os: string;
  osRelease: string;
  arch: string;
  node: string;
  cpu: {
    model: string;
    logicalCores: number;
    physicalCores: number;
    /** Performance cores (Apple: perflevel0), when the OS tells. */
    performanceCores?: number;
    /** ARM core names from /proc/cpuinfo "CPU part" (e.g. Cortex-A76). */
    cores?: string[];
  };
  memory: { totalBytes: number; availableBytes: number; swapTotalBytes?: number };
  deviceTreeModel?: string;
  /** Board/module name derived from /proc/device-tree/compatible (Jetson module part numbers). */
  socModel?: string;
  nvTegraRelease?: string;
  /** L4T release, e.g. "R36.4.3". */
  l4t?: string;
  nvidiaDriver?: string;
  gpu: GpuFacts;
}

export const FACT_FILES = [
  "/proc/meminfo",
  "/proc/cpuinfo",
  "/proc/device-tree/model",
  "/proc/device-tree/compatible",
  "/etc/nv_tegra_release",
  "/proc/driver/nvidia/version",
] as const;

export const SYSCTL_KEYS = [
  "machdep.cpu.brand_string",
  "hw.model",
  "hw.memsize",
  "hw.ncpu",
  "hw.physicalcpu",
  "hw.perflevel0.physicalcpu",
  "hw.perflevel1.physicalcpu",
  "iogpu.wired_limit_mb",
] as const;

/** Probes the GPU through node-llama-cpp without compiling or downloading anything. */
export async function probeGpu(maxThreads = Math.max(1, os.availableParallelism())): Promise<GpuFacts> {
  try {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: "auto", build: "never", skipDownload: true, maxThreads,
      logLevel: LlamaLogLevel.error, progressLogs: false });
    let facts: GpuFacts;
    try {
      const vram = await llama.getVramState();
      const devices = await llama.getGpuDeviceNames();
      facts = { type: llama.gpu, devices, vram: { total: vram.total, used: vram.used, free: vram.free, unifiedSize: vram.unifiedSize } };
    } finally {
      await llama.dispose();
    }
    return await unusableGpu(facts);
  } catch (e) {
    return { type: false, devices: [], error: (e as Error).message.split("\n")[0] };
  }
}

/**
 * node-llama-cpp picks its Vulkan binary wherever the Vulkan loader is installed, even when ggml then finds no
 * device it uses (only a CPU-type one, such as lavapipe): that run is on the CPU. Reports it as no GPU, with the
 * skipped devices and why; marks software devices that are in use because GGML_VK_VISIBLE_DEVICES names them.
 */
async function unusableGpu(f: GpuFacts): Promise<GpuFacts> {
  if (f.type === false) return f;
  if (f.devices.length > 0) {
    return f.type === "vulkan" && f.devices.every(isSoftwareVulkanName) ? { ...f, softwareDevice: true } : f;
  }
  const skipped: SkippedGpuDevice[] = [];
  if (f.type === "vulkan") {
    for (const d of (await probeVulkanDevices()).devices) {
      skipped.push({ api: "vulkan", index: d.index, name: d.name, cpuType: d.cpuType,
        reason: d.cpuType ? SOFTWARE_VULKAN_REASON : "ggml did not select it" });
    }
  }
  return { type: false, devices: [], error: `node-llama-cpp's ${f.type} binary loaded, but ggml uses no ${f.type} device`,
    ...(skipped.length ? { skipped } : {}) };
}

/** The machine this process runs on. */
export function liveSource(): FactsSource {
  const sysctlCache = new Map<string, string | undefined>();
  return {
    label: "live",
    platform: () => process.platform,
    arch: () => process.arch,
    release: () => os.release(),
    cpus: () => {
      const c = os.cpus();
      return { model: (c[0]?.model ?? "").trim(), count: c.length || os.availableParallelism() };
    },
    totalMemory: () => os.totalmem(),
    freeMemory: () => os.freemem(),
    readFile: (file) => {
      try {
        return readFileSync(file, "latin1");
      } catch {
        return undefined;
      }
    },
    sysctl: (name) => {
      if (process.platform !== "darwin") return undefined;
      if (!sysctlCache.has(name)) {
        let v: string | undefined;
        try {
          v = execFileSync("sysctl", ["-n", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
        } catch {
          v = undefined;
        }
        sysctlCache.set(name, v);
      }
      return sysctlCache.get(name);
    },
    gpu: () => probeGpu(),
    nodeVersion: () => process.version,
  };
}

/** A source that replays a recording. */
export function recordedSource(rec: FactsRecording): FactsSource {
  return {
    label: rec.label,
    platform: () => rec.os.platform,
    arch: () => rec.os.arch,
    release: () => rec.os.release,
    cpus: () => ({ model: rec.os.cpuModel, count: rec.os.cpuCount }),
    totalMemory: () => rec.os.totalmem,
    freeMemory: () => rec.os.freemem,
    readFile: (file) => rec.files[file],
    sysctl: (name) => rec.sysctl?.[name],
    gpu: async () => rec.gpu,
    nodeVersion: () => rec.os.node,
  };
}

/** Captures a source as a recording (for `lora-edge devices --record`). */
export async function recordFacts(src: FactsSource = liveSource()): Promise<FactsRecording> {
  const files: Record<string, string> = {};
  for (const f of FACT_FILES) {
    const text = src.readFile(f);
    if (text !== undefined) files[f] = text;
  }
  const sysctl: Record<string, string> = {};
  for (const k of SYSCTL_KEYS) {
    const v = src.sysctl(k);
    if (v !== undefined) sysctl[k] = v;
  }
  const c = src.cpus();
  return {
    recordingVersion: 1,
    label: src.label,
    os: { platform: src.platform(), arch: src.arch(), release: src.release(), cpuModel: c.model, cpuCount: c.count,
      totalmem: src.totalMemory(), freemem: src.freeMemory(), node: src.nodeVersion() },
    files,
    ...(Object.keys(sysctl).length ? { sysctl } : {}),
    gpu: await src.gpu(),
  };
}

/** Parses /proc/meminfo into bytes per key. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out.set(m[1], Number(m[2]) * (line.includes("kB") ? 1024 : 1));
  }
  return out;
}

const ARM_PARTS: Record<string, string> = {
  "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72",
  "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77",
  "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78", "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510",
  "0xd47": "Cortex-A710", "0xd48": "Cortex-X2", "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4f": "Neoverse-V2",
};

/** Parses /proc/cpuinfo: logical count, physical cores (x86 core ids), ARM core names, a model name. */
export function parseCpuinfo(text: string): { logical: number; physical?: number; cores: string[]; model?: string } {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  const cores: string[] = [];
  const physIds = new Set<string>();
  let model: string | undefined;
  for (const b of blocks) {
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, "mi").exec(b)?.[1]?.trim();
    const part = field("CPU part");
    if (part) cores.push(ARM_PARTS[part.toLowerCase()] ?? `ARM part ${part}`);
    const pid = field("physical id");
    const cid = field("core id");
    if (cid !== undefined) physIds.add(`${pid ?? 0}:${cid}`);
    model ??= field("model name");
  }
  const hwModel = /^Model\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
  return { logical: blocks.length, physical: physIds.size || undefined, cores, model: model ?? hwModel };
}

/** Jetson module part numbers in /proc/device-tree/compatible. */
const JETSON_MODULES: [RegExp, string][] = [
  [/p3767-000[3-5]/, "Jetson Orin Nano"],
  [/p3767-000[01]/, "Jetson Orin NX"],
  [/p3701-00(0[0-9]|[1-9][0-9])/, "Jetson AGX Orin"],
  [/p3668/, "Jetson Xavier NX"],
  [/p2888/, "Jetson AGX Xavier"],
];

function clean(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = text.replace(/\0+$/g, "").replace(/\0/g, " ").trim();
  return t.length ? t : undefined;
}

/** Normalizes a source's raw reads into SystemFacts. */
export async function gatherFacts(src: FactsSource = liveSource()): Promise<SystemFacts> {
  const platform = src.platform();
  const osCpu = src.cpus();
  const cpuinfoText = src.readFile("/proc/cpuinfo");
  const cpuinfo = cpuinfoText ? parseCpuinfo(cpuinfoText) : undefined;
  const sysNum = (k: string) => {
    const v = src.sysctl(k);
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
  };
  const logical = sysNum("hw.ncpu") ?? (cpuinfo?.logical || osCpu.count);
  const physical = sysNum("hw.physicalcpu") ?? cpuinfo?.physical ?? logical;
  const performanceCores = sysNum("hw.perflevel0.physicalcpu");
  const cores = cpuinfo?.cores.length ? cpuinfo.cores : undefined;
  let model = src.sysctl("machdep.cpu.brand_string")?.trim() || osCpu.model || cpuinfo?.model || "";
  if ((!model || model === "unknown") && cores) model = [...new Set(cores)].join(" + ");

  const meminfoText = src.readFile("/proc/meminfo");
  const meminfo = meminfoText ? parseMeminfo(meminfoText) : undefined;
  const totalBytes = sysNum("hw.memsize") ?? meminfo?.get("MemTotal") ?? src.totalMemory();
  const availableBytes = meminfo?.get("MemAvailable") ?? src.freeMemory();

  const dtModel = clean(src.readFile("/proc/device-tree/model"));
  const compatible = clean(src.readFile("/proc/device-tree/compatible"));
  let socModel: string | undefined;
  if (compatible) socModel = JETSON_MODULES.find(([re]) => re.test(compatible))?.[1];
  const tegra = clean(src.readFile("/etc/nv_tegra_release"))?.split("\n")[0];
  let l4t: string | undefined;
  if (tegra) {
    const m = /R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)/.exec(tegra);
    if (m) l4t = `R${m[1]}.${m[2]}`;
  }
  const nvidiaDriver = clean(src.readFile("/proc/driver/nvidia/version"))?.split("\n")[0];
  const swap = meminfo?.get("SwapTotal");

  return {
    source: src.label,
    os: platform,
    osRelease: src.release(),
    arch: src.arch(),
    node: src.nodeVersion(),
    cpu: { model, logicalCores: logical, physicalCores: physical,
      ...(performanceCores !== undefined ? { performanceCores } : {}), ...(cores ? { cores } : {}) },
    memory: { totalBytes, availableBytes, ...(swap !== undefined ? { swapTotalBytes: swap } : {}) },
    ...(dtModel ? { deviceTreeModel: dtModel } : {}),
    ...(socModel ? { socModel } : {}),
    ...(tegra ? { nvTegraRelease: tegra } : {}),
    ...(l4t ? { l4t } : {}),
    ...(nvidiaDriver ? { nvidiaDriver } : {}),
    gpu: await src.gpu(),
  };
}
