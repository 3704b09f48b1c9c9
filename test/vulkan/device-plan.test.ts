// The x64-vulkan profile on a real Vulkan device: detection, the memory plan against what llama.cpp allocates there,
// and Runtime.open({ device }) loading what the plan says.
import { describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/index.js";
import { detect } from "../../src/devices/detect.js";
import { gatherFacts, type SystemFacts } from "../../src/devices/facts.js";
import { planWithFacts, type MemoryPlan } from "../../src/devices/plan.js";
import type { GpuReport } from "../../src/backends/backend.js";
import { MODEL, MODEL_Q8 } from "../runtime/helpers.js";
import { announceRun, announceSkip, showVulkanDeviceToThisProcess, vulkanHere } from "./vulkan-process.js";

showVulkanDeviceToThisProcess();
const vk = await vulkanHere();
if ("reason" in vk) announceSkip("device-plan", vk.reason);
else announceRun("device-plan", vk);

/**
 * Stated bounds of the plan against llama.cpp's own memory breakdown on this device: weights and KV cache exact
 * (byte counts from the tensor table and the hyper-parameters); the compute buffers, which the plan estimates from
 * the graph's largest intermediate, within 25%.
 */
const COMPUTE_BOUND = 0.25;

/** What llama.cpp reports for one session's context, next to the plan for the same settings. */
async function measure(model: string, contextSize: number, gpuLayers: number | undefined): Promise<GpuReport> {
  const rt = await Runtime.open({ model, gpu: "vulkan", gpuLayers, contextSize, threads: 1 });
  try {
    const s = rt.session();
    await s.ready();
    return (await rt.backend.memory()).gpu!;
  } finally {
    await rt.dispose();
  }
}

function expectPlanMatches(p: MemoryPlan, g: GpuReport) {
  const gpu = p.placement.gpu!;
  const host = p.placement.host!;
  expect(g.layers).toBe(p.gpuLayers);
  expect(g.modelBytes).toBe(gpu.weights);
  // The device's context bytes are its KV cache (exact) and its compute buffer (estimated).
  const gpuCompute = g.contextBytes - gpu.kvCache;
  expect(Math.abs(gpuCompute - gpu.compute) / gpuCompute, `GPU compute: plan ${gpu.compute}, llama.cpp ${gpuCompute}`).toBeLessThanOrEqual(COMPUTE_BOUND);
  // The host's: the KV cache of the layers left on the CPU and the pinned staging buffer (with the logits).
  const hostCompute = g.hostContextBytes - host.kvCache;
  expect(Math.abs(hostCompute - host.compute) / hostCompute, `host compute: plan ${host.compute}, llama.cpp ${hostCompute}`).toBeLessThanOrEqual(COMPUTE_BOUND);
  expect(hostCompute).toBeGreaterThan(0);
  return { gpuCompute, hostCompute };
}

describe.skipIf("reason" in vk)("x64-vulkan profile on this Vulkan device", () => {
  let facts: SystemFacts;

  it("detection picks x64-vulkan for the device asked for, and says when it is a CPU-type one", async () => {
    const d = await detect();
    facts = d.facts;
    expect(d.profile.name).toBe("x64-vulkan");
    expect(d.facts.gpu.type).toBe("vulkan");
    expect(d.facts.gpu.devices.join(", ")).toBe((vk as { device: string }).device);
    expect(d.reasons.join(" ")).toContain("GPU vulkan");
    expect(d.facts.gpu.vram!.total).toBeGreaterThan(0);
    if ((vk as { software: boolean }).software) {
      expect(d.facts.gpu.softwareDevice).toBe(true);
      expect(d.notes.join(" ")).toMatch(/CPU-type vulkan device .* in use because it was asked for/);
    }
    expect(d.warnings).toEqual([]);
  });

  const cases = [
    { name: "stories260K F32, full offload, 128-token context", model: MODEL, ctx: 128, gpuLayers: undefined },
    { name: "stories260K F32, partial offload (3 of 6), 1024-token context", model: MODEL, ctx: 1024, gpuLayers: 3 },
    { name: "stories260K Q8_0, full offload, 512-token context", model: MODEL_Q8, ctx: 512, gpuLayers: undefined },
    { name: "stories260K Q8_0, partial offload (1 of 6: the output layer), 256-token context", model: MODEL_Q8, ctx: 256, gpuLayers: 1 },
  ];
  for (const c of cases) {
    it(`the plan against llama.cpp's allocations: ${c.name}`, async () => {
      facts ??= await gatherFacts();
      const p = planWithFacts({ model: c.model, contextSize: c.ctx, gpuLayers: c.gpuLayers, profile: "x64-vulkan" }, facts);
      expect(p.backend).toBe("vulkan");
      expect(p.gpuLayers).toBe(c.gpuLayers ?? 6);
      const g = await measure(c.model, c.ctx, c.gpuLayers);
      const m = expectPlanMatches(p, g);
      console.log(`${c.name}: weights on the device ${g.modelBytes} B (plan ${p.placement.gpu!.weights}), ` +
        `compute on the device ${m.gpuCompute} B (plan ${p.placement.gpu!.compute}), host staging ${m.hostCompute} B (plan ${p.placement.host!.compute})`);
    });
  }

  it("Runtime.open({ device: \"auto\" }) loads what the x64-vulkan plan says: all layers on the device", async () => {
    await using rt = await Runtime.open({ model: MODEL, device: "auto", threads: 1, contextSize: 256 });
    expect(rt.plan!.profile).toBe("x64-vulkan");
    expect(rt.plan!.backend).toBe("vulkan");
    expect(rt.backend.device).toBe("vulkan");
    const s = rt.session();
    await s.ready();
    const g = (await rt.backend.memory()).gpu!;
    expect(g.layers).toBe(rt.plan!.gpuLayers);
    expect(g.layers).toBe(6);
    expectPlanMatches(rt.plan!, g);
    const r = await s.complete("Once upon a time", { maxTokens: 4 });
    expect(r.generatedTokens).toBe(4);
    expect(rt.stats().profile).toBe("x64-vulkan");
  });

  it("Runtime.open({ device }) offloads only the layers the plan fits in the device's memory", async () => {
    facts ??= await gatherFacts();
    // The same device with room for the compute buffer, the output layer and two more layers only.
    const full = planWithFacts({ model: MODEL, contextSize: 256, profile: "x64-vulkan" }, facts);
    const perLayer = full.bytes.weightsPerLayer[4] + full.bytes.kvPerLayer;
    const room = full.bytes.compute + full.bytes.outputLayer + 2 * perLayer + 512 * 2 ** 20 + 1000; // the profile keeps 512 MiB free
    const small: SystemFacts = structuredClone(facts);
    small.gpu.vram = { total: room, used: 0, free: room, unifiedSize: 0 };
    await using rt = await Runtime.open({ model: MODEL, device: "x64-vulkan", facts: small, threads: 1, contextSize: 256 });
    expect(rt.plan!.gpuLayers).toBe(3);
    expect(rt.plan!.notes.join(" ")).toMatch(/3 of 6 layers fit in VRAM/);
    const s = rt.session();
    await s.ready();
    const g = (await rt.backend.memory()).gpu!;
    expect(g.layers).toBe(3);
    expectPlanMatches(rt.plan!, g);
  });
});
