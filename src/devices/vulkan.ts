// Vulkan devices ggml can see, including the CPU-type ones it skips unless GGML_VK_VISIBLE_DEVICES names them.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** ggml reads it when its Vulkan backend initialises: a list of device indices to use, CPU-type devices included. */
export const VULKAN_VISIBLE_DEVICES = "GGML_VK_VISIBLE_DEVICES";

/** One Vulkan physical device, as ggml's Vulkan backend describes it. */
export interface VulkanDevice {
  /** Index in the Vulkan loader's list (what GGML_VK_VISIBLE_DEVICES takes). */
  index: number;
  name: string;
  /** The driver's name, e.g. "llvmpipe" or "radv". */
  driver?: string;
  /** VkPhysicalDeviceType CPU: a software renderer (lavapipe, SwiftShader). ggml skips these by default. */
  cpuType: boolean;
  /** Shares memory with the host (integrated GPU). */
  uma?: boolean;
  /** Device memory ggml reports, bytes. */
  memoryBytes?: number;
}

/** Device names of the known software Vulkan implementations (for when ggml's own log is not at hand). */
const SOFTWARE_DEVICE_NAMES = /\b(llvmpipe|lavapipe|swiftshader)\b|basic render driver/i;

/** Whether a Vulkan device name is a known software (CPU-type) implementation. */
export function isSoftwareVulkanName(name: string): boolean {
  return SOFTWARE_DEVICE_NAMES.test(name);
}

/** Parses ggml's Vulkan device lines ("ggml_vulkan: 0 = NAME (DRIVER) | uma: 0 | ..." and the CPU-type warning after it). */
export function parseVulkanDeviceLog(log: string): Omit<VulkanDevice, "index" | "memoryBytes">[] {
  const out: Omit<VulkanDevice, "index" | "memoryBytes">[] = [];
  for (const line of log.split("\n")) {
    const m = /ggml_vulkan: \d+ = (.+) \(([^()]*)\) \| uma: (\d)/.exec(line);
    if (m) out.push({ name: m[1].trim(), driver: m[2], cpuType: false, uma: m[3] === "1" });
    else if (/ggml_vulkan: Warning: Device type is CPU/.test(line) && out.length) out[out.length - 1].cpuType = true;
  }
  return out;
}

// Runs in a fresh process with GGML_VK_VISIBLE_DEVICES set: plain JS, so it needs no compiler.
const CHILD = `
const o = JSON.parse(process.argv[2]);
const { getLlama, LlamaLogLevel } = await import(o.moduleUrl);
const logs = [];
let out;
try {
  const llama = await getLlama({ gpu: "vulkan", build: "never", skipDownload: true, maxThreads: 1,
    logLevel: LlamaLogLevel.debug, logger: (_l, m) => { logs.push(m); }, progressLogs: false });
  const names = await llama.getGpuDeviceNames();
  const vram = await llama.getVramState();
  out = { gpu: llama.gpu, names, vramTotal: vram.total };
  // Log lines arrive asynchronously: wait for ggml's line about the device, then a little for its type warning.
  const described = () => logs.some((l) => /ggml_vulkan: \\d+ = /.test(l));
  for (const end = Date.now() + 3000; Date.now() < end && !described();) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
} catch (e) {
  out = { error: String(e && e.message || e).split("\\n")[0] };
}
process.stdout.write(JSON.stringify({ ...out, log: logs.filter((l) => l.includes("ggml_vulkan")).join("\\n") }) + "\\n");
process.exit(0);
`;

/** Writes the child script once per content (a file, not `node -e`: node-llama-cpp re-runs the exec arguments to test its binary). */
function childScript(): string {
  const file = path.join(os.tmpdir(), `lora-edge-vulkan-probe-${createHash("sha256").update(CHILD).digest("hex").slice(0, 12)}.mjs`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, CHILD);
    renameSync(tmp, file);
  }
  return file;
}

export interface VulkanProbe {
  /** Devices found, by index. */
  devices: VulkanDevice[];
  /** Why the probe stopped (e.g. no Vulkan binary, or no device at the next index). */
  stoppedAt?: string;
}

let memo: Promise<VulkanProbe> | undefined;

/**
 * Lists Vulkan devices by loading node-llama-cpp's Vulkan binary in fresh processes, each with
 * GGML_VK_VISIBLE_DEVICES set to one index, until an index has no device (or `maxDevices`).
 * This process's environment is left as it is. A second or more per index; the answer is kept for the process
 * (`fresh` probes again).
 */
export function probeVulkanDevices(o: { maxDevices?: number; timeoutMs?: number; fresh?: boolean } = {}): Promise<VulkanProbe> {
  if (o.fresh || !memo) memo = probeOnce(o);
  return memo;
}

/** Loads the Vulkan binary in a fresh process that sees only device `index`; undefined with the reason when there is none. */
async function probeIndex(script: string, moduleUrl: string, index: number, timeoutMs: number): Promise<VulkanDevice | string> {
  const env = { ...process.env, [VULKAN_VISIBLE_DEVICES]: String(index) };
  let r: { gpu?: string | false; names?: string[]; vramTotal?: number; error?: string; log?: string };
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [script, JSON.stringify({ moduleUrl })], { env, timeout: timeoutMs, maxBuffer: 1 << 22 },
        (err, out) => (err ? reject(err) : resolve(out)));
    });
    r = JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
  } catch (e) {
    return `index ${index}: the probe process failed (${(e as Error).message.split("\n")[0]})`;
  }
  if (r.error || r.gpu !== "vulkan" || !r.names?.length) return `index ${index}: ${r.error ?? "no device"}`;
  const seen = parseVulkanDeviceLog(r.log ?? "")[0];
  const name = r.names[0];
  return { index, name, ...(seen?.driver ? { driver: seen.driver } : {}),
    cpuType: seen ? seen.cpuType : isSoftwareVulkanName(name), ...(seen ? { uma: seen.uma } : {}),
    ...(r.vramTotal ? { memoryBytes: r.vramTotal } : {}) };
}

async function probeOnce(o: { maxDevices?: number; timeoutMs?: number }): Promise<VulkanProbe> {
  const moduleUrl = pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href;
  const script = childScript();
  const devices: VulkanDevice[] = [];
  const max = o.maxDevices ?? 4;
  // Two indices at a time: most machines have one or two devices, and each probe is a process start.
  for (let index = 0; index < max; index += 2) {
    const batch = await Promise.all([index, index + 1].filter((i) => i < max)
      .map((i) => probeIndex(script, moduleUrl, i, o.timeoutMs ?? 60_000)));
    for (const r of batch) {
      if (typeof r === "string") return { devices, stoppedAt: r };
      devices.push(r);
    }
  }
  return { devices };
}

/**
 * For a program that asks for Vulkan explicitly (the benchmark's `--gpu vulkan`): when ggml would use no device
 * by default, sets GGML_VK_VISIBLE_DEVICES in this process to the first CPU-type device, so that ggml lists it.
 * Must run before this process loads node-llama-cpp's Vulkan binary. Leaves a value the user set alone.
 * Returns the device used, or undefined when there is no Vulkan device at all.
 */
export async function askForVulkanDevice(): Promise<VulkanDevice | undefined> {
  const set = process.env[VULKAN_VISIBLE_DEVICES];
  const { devices } = await probeVulkanDevices();
  if (set !== undefined) return devices.find((d) => d.index === Number(set.split(/[ ,]/)[0]));
  const gpu = devices.find((d) => !d.cpuType);
  if (gpu) return gpu; // ggml uses it by default
  const software = devices.find((d) => d.cpuType);
  if (software) process.env[VULKAN_VISIBLE_DEVICES] = String(software.index);
  return software;
}
