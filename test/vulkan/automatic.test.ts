// A CPU-type Vulkan device (lavapipe) is never chosen automatically: "auto" runs on the CPU and says why, detection
// and `lora-edge devices` name the device and the reason, and asking for Vulkan without naming the device is an error.
// This file leaves GGML_VK_VISIBLE_DEVICES alone: it checks what a user gets by default.
import { describe, expect, it } from "vitest";
import { getLlama } from "node-llama-cpp";
import { Runtime } from "../../src/runtime/index.js";
import { detect } from "../../src/devices/detect.js";
import { formatDetection } from "../../src/devices/format.js";
import { SOFTWARE_VULKAN_REASON } from "../../src/devices/facts.js";
import { probeVulkanDevices, VULKAN_VISIBLE_DEVICES } from "../../src/devices/vulkan.js";
import { BackendUnavailableError } from "../../src/errors.js";
import { cli } from "../cli-capture.js";
import { MODEL } from "../runtime/helpers.js";
import { announceRun, announceSkip } from "./vulkan-process.js";

/** The case this file is about: node-llama-cpp's "auto" loads the Vulkan binary, and ggml uses no device of it. */
async function softwareOnly(): Promise<{ device: string; index: number } | { reason: string }> {
  if (process.env[VULKAN_VISIBLE_DEVICES] !== undefined) return { reason: `${VULKAN_VISIBLE_DEVICES} is set in the environment` };
  let gpu: string | false;
  let devices: string[];
  try {
    const llama = await getLlama({ gpu: "auto", build: "never", skipDownload: true, maxThreads: 1, logLevel: "error" as never, progressLogs: false });
    gpu = llama.gpu;
    devices = await llama.getGpuDeviceNames();
    await llama.dispose();
  } catch (e) {
    return { reason: `node-llama-cpp loads no binary (${(e as Error).message.split("\n")[0]})` };
  }
  if (gpu !== "vulkan") return { reason: `node-llama-cpp's "auto" picked ${gpu === false ? "the CPU" : gpu}, not its Vulkan binary` };
  if (devices.length > 0) return { reason: `ggml uses a Vulkan GPU here (${devices.join(", ")})` };
  const cpuType = (await probeVulkanDevices()).devices.find((d) => d.cpuType);
  if (!cpuType) return { reason: "no CPU-type Vulkan device found" };
  return { device: cpuType.name, index: cpuType.index };
}

const here = await softwareOnly();
if ("reason" in here) announceSkip("automatic", here.reason);
else announceRun("automatic", { device: here.device, software: true });

describe.skipIf("reason" in here)("a CPU-type Vulkan device is used only when asked for", () => {
  const device = () => (here as { device: string }).device;

  it("detection picks the CPU profile and names the device it did not use, and why", async () => {
    const d = await detect();
    expect(d.profile.name).toBe("generic-x64-cpu");
    expect(d.facts.gpu.type).toBe(false);
    expect(d.facts.gpu.skipped).toEqual([expect.objectContaining({ api: "vulkan", name: device(), cpuType: true, reason: SOFTWARE_VULKAN_REASON })]);
    const text = formatDetection(d);
    expect(text).toMatch(/gpu +none used \(node-llama-cpp's vulkan binary loaded, but ggml uses no vulkan device\)/);
    expect(text).toContain(`found vulkan device ${(here as { index: number }).index} "${device()}", not used: a CPU-type Vulkan device`);
  });

  it("`lora-edge devices` says what it found and why it is not used", async () => {
    const r = await cli("devices");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/device +generic-x64-cpu/);
    expect(r.out).toContain(`"${device()}", not used: a CPU-type Vulkan device (a software renderer): slower than llama.cpp's CPU backend`);
  });

  it("Runtime.open with gpu \"auto\" runs on the CPU backend and says why", async () => {
    await using rt = await Runtime.open({ model: MODEL, threads: 1, contextSize: 256 });
    expect(rt.backend.name).toBe("native");
    expect(rt.backend.device).toBe("cpu");
    expect(rt.backendNotice).toMatch(/Vulkan binary loaded, but ggml uses no Vulkan device .*: running on the CPU backend/);
    expect((await rt.backend.memory()).gpu).toBeUndefined();
    expect(rt.liveSwap).toBe(true);
    const r = await rt.session().complete("Once upon a time", { maxTokens: 3 });
    expect(r.generatedTokens).toBe(3);
  });

  it("asking for Vulkan without naming the device is an error that says how", async () => {
    const err = await Runtime.open({ model: MODEL, backend: "native", gpu: "vulkan", threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toContain(`unless ${VULKAN_VISIBLE_DEVICES} names them`);
  });
});
