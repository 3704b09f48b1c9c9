// CPU-type Vulkan devices on recorded facts (no Vulkan needed): ggml's device lines, detection, the devices text,
// and the plan's placement (llama.cpp's order, a software device's memory counted as host memory).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { detect } from "../../src/devices/detect.js";
import { recordedSource, type FactsRecording } from "../../src/devices/facts.js";
import { formatDetection, formatPlan } from "../../src/devices/format.js";
import { planWithFacts } from "../../src/devices/plan.js";
import { isSoftwareVulkanName, parseVulkanDeviceLog } from "../../src/devices/vulkan.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture } from "../fixtures.js";

const recording = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, `../fixtures/facts/${name}.json`), "utf8")) as FactsRecording;
const MODEL = fixture("models/stories260K.gguf");

describe("ggml's Vulkan device lines", () => {
  it("reads name, driver, memory sharing and the CPU-type warning", () => {
    const log = [
      "ggml_vulkan: Found 2 Vulkan devices:",
      "ggml_vulkan: 0 = AMD Radeon RX 7800 XT (RADV NAVI32) (radv) | uma: 0 | fp16: 1 | bf16: 0 | warp size: 64 | shared memory: 65536 | int dot: 1 | matrix cores: KHR_coopmat",
      "ggml_vulkan: 1 = llvmpipe (LLVM 15.0.6, 256 bits) (llvmpipe) | uma: 0 | fp16: 1 | bf16: 0 | fp4: 0 | warp size: 8 | shared memory: 32768 | int dot: 0 | matrix cores: none",
      "ggml_vulkan: Warning: Device type is CPU. This is probably not the device you want.",
    ].join("\n");
    expect(parseVulkanDeviceLog(log)).toEqual([
      { name: "AMD Radeon RX 7800 XT (RADV NAVI32)", driver: "radv", cpuType: false, uma: false },
      { name: "llvmpipe (LLVM 15.0.6, 256 bits)", driver: "llvmpipe", cpuType: true, uma: false },
    ]);
    expect(parseVulkanDeviceLog("ggml_vulkan: No devices found.")).toEqual([]);
  });

  it("knows the software implementations by name", () => {
    expect(isSoftwareVulkanName("llvmpipe (LLVM 15.0.6, 256 bits)")).toBe(true);
    expect(isSoftwareVulkanName("SwiftShader Device (LLVM 10.0.0)")).toBe(true);
    expect(isSoftwareVulkanName("Microsoft Direct3D12 (Microsoft Basic Render Driver)")).toBe(true);
    expect(isSoftwareVulkanName("AMD Radeon RX 7800 XT (RADV NAVI32)")).toBe(false);
    expect(isSoftwareVulkanName("NVIDIA GeForce RTX 4090")).toBe(false);
  });
});

describe("a machine whose only Vulkan device is lavapipe", () => {
  it("by default: the CPU profile, and a note naming the device and why it is not used", async () => {
    const d = await detect(recordedSource(recording("x64-epyc-2vcpu-lavapipe-skipped")));
    expect(d.profile.name).toBe("generic-x64-cpu");
    expect(d.warnings).toEqual([]);
    expect(d.notes).toEqual([expect.stringMatching(/^found vulkan device 0 "llvmpipe \(LLVM 15\.0\.6, 256 bits\)", not used: a CPU-type Vulkan device .* slower than llama\.cpp's CPU backend/)]);
    const text = formatDetection(d);
    expect(text).toMatch(/^gpu +none used \(node-llama-cpp's vulkan binary loaded, but ggml uses no vulkan device\)$/m);
    expect(text).toMatch(/^note +found vulkan device 0 "llvmpipe/m);
    expect(planWithFacts({ model: MODEL }, d.facts).gpuLayers).toBe(0);
  });

  it("asked for (GGML_VK_VISIBLE_DEVICES): x64-vulkan, with a note that the device is a software one", async () => {
    const d = await detect(recordedSource(recording("x64-epyc-2vcpu-lavapipe-asked")));
    expect(d.profile.name).toBe("x64-vulkan");
    expect(d.facts.gpu.softwareDevice).toBe(true);
    expect(d.notes.join(" ")).toMatch(/llvmpipe .* is a CPU-type vulkan device \(a software renderer\), in use because it was asked for/);
    expect(formatDetection(d)).toMatch(/^gpu +vulkan: llvmpipe \(LLVM 15\.0\.6, 256 bits\), 2\.00 GiB free of 2\.00 GiB$/m);
  });

  it("the plan counts a software device's memory in host memory too", async () => {
    const facts = (await detect(recordedSource(recording("x64-epyc-2vcpu-lavapipe-asked")))).facts;
    const soft = planWithFacts({ model: MODEL, contextSize: 256 }, facts);
    const hard = planWithFacts({ model: MODEL, contextSize: 256 }, { ...facts, gpu: { ...facts.gpu, softwareDevice: false } });
    expect(soft.gpuLayers).toBe(6);
    expect(soft.placement.gpuBytes).toBe(hard.placement.gpuBytes);
    expect(soft.placement.hostBytes).toBe(hard.placement.hostBytes + hard.placement.gpuBytes);
    expect(soft.notes.join(" ")).toMatch(/is a software device: its [\d.]+ MiB of device memory is host memory/);
    expect(formatPlan(soft)).toMatch(/on GPU .* usable VRAM/);
  });
});

describe("plan placement in llama.cpp's order (n_gpu_layers = k: the output layer, then the last k - 1 blocks)", () => {
  const f = openGguf(MODEL);
  const bytes = (pred: (name: string) => boolean) => f.tensors.filter((t) => pred(t.name)).reduce((s, t) => s + t.byteSize, 0);
  const output = bytes((n) => n === "output.weight" || n === "output_norm.weight");
  const block = (i: number) => bytes((n) => n.startsWith(`blk.${i}.`));
  const total = bytes(() => true);
  f.close();

  for (const [k, weights] of [[1, output], [3, output + block(3) + block(4)], [6, total - bytes((n) => n === "token_embd.weight")]] as const) {
    it(`gpuLayers ${k}`, async () => {
      const facts = (await detect(recordedSource(recording("x64-epyc-2vcpu-lavapipe-asked")))).facts;
      const p = planWithFacts({ model: MODEL, contextSize: 256, gpuLayers: k }, facts);
      expect(p.gpuLayers).toBe(k);
      expect(p.placement.gpu!.weights).toBe(weights);
      expect(p.placement.host!.weights).toBe(total - weights);
      expect(p.placement.gpu!.kvCache).toBe((k - 1) * p.bytes.kvPerLayer);
      expect(p.placement.host!.kvCache).toBe(p.bytes.kvCache - (k - 1) * p.bytes.kvPerLayer);
    });
  }
});
