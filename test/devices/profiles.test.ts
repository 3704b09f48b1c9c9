// Tests the device profile files and the validating loader.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { getProfile, loadProfileFile, loadProfiles, profilesDir, ProfileError, validateProfile } from "../../src/devices/profiles.js";

const NAMES = ["apple-silicon", "x64-nvidia", "x64-vulkan", "jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin",
  "raspberry-pi-5", "generic-x64-cpu", "generic-arm64-cpu"];

describe("device profiles", () => {
  it("ships the nine profiles, all valid", () => {
    const names = loadProfiles().map((p) => p.name).sort();
    expect(names).toEqual([...NAMES].sort());
  });

  it("Jetson profiles: CUDA source build with the Orin flags, unified memory, power modes", () => {
    for (const n of ["jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin"]) {
      const p = getProfile(n);
      expect(p.gpu).toBe("cuda");
      expect(p.memory.model).toBe("unified");
      expect(p.build.prebuilt).toBe(false);
      expect(p.build.commands.join("\n")).toContain("source download --gpu cuda");
      expect(p.build.env).toMatchObject({ NODE_LLAMA_CPP_CMAKE_OPTION_CMAKE_CUDA_ARCHITECTURES: "87",
        NODE_LLAMA_CPP_CMAKE_OPTION_GGML_CUDA_NO_VMM: "ON" });
      expect(p.powerModes!.length).toBeGreaterThan(1);
    }
    expect(getProfile("apple-silicon")).toMatchObject({ gpu: "metal", memory: { model: "unified" } });
    expect(getProfile("x64-nvidia").memory.model).toBe("discrete");
    expect(getProfile("raspberry-pi-5")).toMatchObject({ gpu: false, memory: { model: "cpu" }, defaults: { gpuLayers: 0 } });
  });

  it("rejects bad profiles naming the file and field", () => {
    const good = JSON.parse(readFileSync(path.join(profilesDir(), "x64-nvidia.json"), "utf8"));
    const bad = (mut: (p: any) => void, field: string) => {
      const p = structuredClone(good);
      mut(p);
      let err: unknown;
      try { validateProfile(p, "x.json"); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(ProfileError);
      expect((err as ProfileError).file).toBe("x.json");
      expect((err as ProfileError).field).toBe(field);
    };
    bad((p) => { p.schemaVersion = 2; }, "schemaVersion");
    bad((p) => { p.match = []; }, "match");
    bad((p) => { p.match[0].colour = "red"; }, "match[0].colour");
    bad((p) => { p.match[0].gpuType = ["opencl"]; }, "match[0].gpuType");
    bad((p) => { p.gpu = "rocm"; }, "gpu");
    bad((p) => { p.memory.model = "shared"; }, "memory.model");
    bad((p) => { p.gpu = false; }, "memory.model");
    bad((p) => { p.defaults.threads = 0; }, "defaults.threads");
    bad((p) => { p.defaults.contextSize = "big"; }, "defaults.contextSize");
    bad((p) => { p.build.commands = []; }, "build.commands");
    bad((p) => { p.powerModes = [{ name: "MAXN" }]; }, "powerModes[0].nvpmodel");
  });

  it("loadProfileFile checks JSON and that the name matches the file", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "profiles-"));
    try {
      writeFileSync(path.join(dir, "broken.json"), "{ not json");
      expect(() => loadProfileFile(path.join(dir, "broken.json"))).toThrow(ProfileError);
      const p = JSON.parse(readFileSync(path.join(profilesDir(), "generic-x64-cpu.json"), "utf8"));
      writeFileSync(path.join(dir, "other-name.json"), JSON.stringify(p));
      expect(() => loadProfileFile(path.join(dir, "other-name.json"))).toThrow(/must equal the file name/);
      expect(() => getProfile("no-such-device")).toThrow(/known: .*apple-silicon/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
