// Tests device detection on recorded fact files of every profile.
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { detect, detectFromFacts } from "../../src/devices/detect.js";
import { gatherFacts, parseCpuinfo, parseMeminfo, recordedSource, type FactsRecording } from "../../src/devices/facts.js";
import { loadProfiles } from "../../src/devices/profiles.js";

const dir = path.resolve(import.meta.dirname, "../fixtures/facts");
const recordings = readdirSync(dir).filter((f) => f.endsWith(".json")).sort()
  .map((f) => [f, JSON.parse(readFileSync(path.join(dir, f), "utf8")) as FactsRecording] as const);
const GiB = 1024 ** 3;

describe("detect on recorded facts", () => {
  it("has a recording for every profile", () => {
    const covered = new Set(recordings.map(([, r]) => r.expectedProfile));
    for (const p of loadProfiles()) expect(covered, p.name).toContain(p.name);
  });

  for (const [file, rec] of recordings) {
    it(`${file} -> ${rec.expectedProfile}`, async () => {
      const d = await detect(recordedSource(rec));
      expect(d.profile.name).toBe(rec.expectedProfile);
      expect(d.reasons.length).toBeGreaterThan(0);
      expect(d.threads).toBeGreaterThan(0);
      expect(d.threads).toBeLessThanOrEqual(d.facts.cpu.logicalCores);
      expect(d.facts.memory.totalBytes).toBeGreaterThan(GiB);
      expect(d.facts.memory.availableBytes).toBeLessThanOrEqual(d.facts.memory.totalBytes);
    });
  }
});

const rec = (name: string) => recordings.find(([f]) => f === `${name}.json`)![1];

describe("facts parsing", () => {
  it("reads a Jetson Orin Nano: device tree, module, L4T, cores, meminfo", async () => {
    const d = await detect(recordedSource(rec("jetson-orin-nano-8gb-super-jp62")));
    const f = d.facts;
    expect(f.deviceTreeModel).toBe("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super");
    expect(f.socModel).toBe("Jetson Orin Nano");
    expect(f.l4t).toBe("R36.4.3");
    expect(f.cpu.cores).toEqual(Array(6).fill("Cortex-A78AE"));
    expect(f.memory.totalBytes).toBe(7802040 * 1024);
    expect(f.memory.availableBytes).toBe(5903212 * 1024);
    expect(f.memory.swapTotalBytes).toBe(3901008 * 1024);
    expect(d.threads).toBe(6);
    expect(d.warnings).toEqual([]);
    expect(d.profile.memory.model).toBe("unified");
    expect(d.profile.build.cmakeOptions).toMatchObject({ CMAKE_CUDA_ARCHITECTURES: "87", GGML_CUDA_NO_VMM: "ON" });
    expect(d.profile.powerModes!.map((m) => m.name)).toContain("7W");
  });

  it("recognises a Jetson from its module id alone and warns when the CUDA build is missing", async () => {
    const r = structuredClone(rec("jetson-orin-nano-8gb-prebuilt-cpu"));
    delete r.files["/proc/device-tree/model"];
    const d = await detect(recordedSource(r));
    expect(d.profile.name).toBe("jetson-orin-nano");
    expect(d.reasons.join(" ")).toContain("module Jetson Orin Nano");
    expect(d.warnings.join(" ")).toMatch(/uses cuda, but node-llama-cpp found no GPU backend/);
  });

  it("a Jetson without nv_tegra_release or device tree falls back to generic arm64", async () => {
    const r = structuredClone(rec("jetson-agx-orin-64gb-jp512"));
    r.files = { "/proc/cpuinfo": r.files["/proc/cpuinfo"] };
    r.gpu = { type: false, devices: [] };
    expect((await detect(recordedSource(r))).profile.name).toBe("generic-arm64-cpu");
  });

  it("reads an M-series Mac from sysctl: performance cores set the threads", async () => {
    const d = await detect(recordedSource(rec("apple-m2-pro-32gb")));
    expect(d.facts.cpu).toMatchObject({ model: "Apple M2 Pro", logicalCores: 12, physicalCores: 12, performanceCores: 8 });
    expect(d.facts.memory.totalBytes).toBe(32 * GiB);
    expect(d.threads).toBe(8);
    expect(d.facts.gpu.vram!.unifiedSize).toBeGreaterThan(0);
  });

  it("reads a Raspberry Pi 5 cpuinfo", async () => {
    const d = await detect(recordedSource(rec("raspberry-pi-5-8gb")));
    expect(d.facts.cpu.cores).toEqual(Array(4).fill("Cortex-A76"));
    expect(d.facts.deviceTreeModel).toBe("Raspberry Pi 5 Model B Rev 1.0");
    expect(d.threads).toBe(4);
    expect(d.alsoMatched).toContain("generic-arm64-cpu");
  });

  it("counts x86 physical cores from core ids (SMT off the thread count)", async () => {
    const d = await detect(recordedSource(rec("x64-rtx4090-ryzen7950x")));
    expect(d.facts.cpu).toMatchObject({ logicalCores: 32, physicalCores: 16 });
    expect(d.threads).toBe(16);
    expect(d.facts.nvidiaDriver).toMatch(/550\.120/);
  });

  it("an NVIDIA driver without a CUDA binary still picks x64-nvidia, with a warning", async () => {
    const r = structuredClone(rec("x64-rtx4090-ryzen7950x"));
    r.gpu = { type: "vulkan", devices: ["NVIDIA GeForce RTX 4090"] };
    const d = await detect(recordedSource(r));
    expect(d.profile.name).toBe("x64-nvidia");
    expect(d.alsoMatched).toContain("x64-vulkan");
    expect(d.warnings.join(" ")).toContain("found vulkan");
  });

  it("parses meminfo and cpuinfo", () => {
    const m = parseMeminfo("MemTotal:       1000 kB\nMemAvailable:    500 kB\nHugePages_Total:       0\n");
    expect(m.get("MemTotal")).toBe(1024000);
    expect(m.get("HugePages_Total")).toBe(0);
    const c = parseCpuinfo("processor\t: 0\nCPU part\t: 0xd0b\n\nprocessor\t: 1\nCPU part\t: 0xfff\n");
    expect(c).toMatchObject({ logical: 2, cores: ["Cortex-A76", "ARM part 0xfff"] });
  });

  it("gathers facts of this machine", async () => {
    const f = await gatherFacts();
    expect(f.source).toBe("live");
    expect(f.cpu.logicalCores).toBeGreaterThan(0);
    expect(f.memory.totalBytes).toBeGreaterThan(0);
    const d = detectFromFacts(f);
    expect(d.profile.name).toBeTruthy();
  });
});
