// Vulkan test files: show a Vulkan device to ggml in this test process only, find it, and say what ran (or why not).
import { isMainThread } from "node:worker_threads";
import { afterAll, afterEach, expect } from "vitest";
import { getLlama, type Llama } from "node-llama-cpp";
import { isSoftwareVulkanName, VULKAN_VISIBLE_DEVICES } from "../../src/devices/vulkan.js";

export interface VulkanHere {
  /** The device ggml uses in this process. */
  device: string;
  /** A CPU-type device (lavapipe): visible only because GGML_VK_VISIBLE_DEVICES names it. */
  software: boolean;
  llama: Llama;
}

/**
 * Makes ggml's Vulkan backend list the device at GGML_VK_VISIBLE_DEVICES (default index 0, CPU-type devices
 * included) in this process. ggml reads the variable once, when its Vulkan backend loads: call this before
 * anything in the process loads node-llama-cpp's Vulkan binary. Vitest runs each test file in its own child
 * process (the forks pool), so the variable never reaches other test files.
 */
export function showVulkanDeviceToThisProcess(): string {
  if (!isMainThread) throw new Error("the Vulkan tests set an environment variable for ggml: they need vitest's forks pool, not threads");
  process.env[VULKAN_VISIBLE_DEVICES] ??= "0";
  return process.env[VULKAN_VISIBLE_DEVICES]!;
}

/** The Vulkan device this process sees through node-llama-cpp's Vulkan binary, or why there is none. */
export async function vulkanHere(): Promise<VulkanHere | { reason: string }> {
  let llama: Llama;
  try {
    llama = await getLlama({ gpu: "vulkan", build: "never", skipDownload: true, maxThreads: 1, logLevel: "error" as never, progressLogs: false });
  } catch (e) {
    return { reason: `no Vulkan driver or device (node-llama-cpp: ${(e as Error).message.split("\n")[0]})` };
  }
  const devices = await llama.getGpuDeviceNames();
  if (llama.gpu !== "vulkan" || devices.length === 0) {
    await llama.dispose();
    return { reason: "node-llama-cpp's Vulkan binary loaded but ggml lists no device" };
  }
  return { device: devices.join(", "), software: devices.every(isSoftwareVulkanName), llama };
}

/** One visible line when a Vulkan test file is skipped. */
export function announceSkip(file: string, reason: string): void {
  console.log(`Vulkan tests skipped (${file}): ${reason}. Install mesa-vulkan-drivers and libvulkan1 to run them on lavapipe.`);
}

/** Counts the assertions of every test in the file and prints one line at the end: the device used and the checks run. */
export function announceRun(file: string, vk: Pick<VulkanHere, "device" | "software">): void {
  let tests = 0;
  let checks = 0;
  afterEach(() => {
    tests++;
    checks += expect.getState().assertionCalls;
  });
  afterAll(() => {
    const env = process.env[VULKAN_VISIBLE_DEVICES];
    console.log(`Vulkan tests ran (${file}) on ${vk.device}${vk.software ? ", a CPU-type device (software renderer)" : ""}, ` +
      `${env === undefined ? `${VULKAN_VISIBLE_DEVICES} unset` : `${VULKAN_VISIBLE_DEVICES}=${env}`}: ${tests} tests, ${checks} checks`);
  });
}
