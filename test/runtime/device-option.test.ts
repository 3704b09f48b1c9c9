// Runtime.open's `device` option: the device plan sets threads, context size and GPU API, and refuses a model that does not fit.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Runtime } from "../../src/runtime/index.js";
import { gatherFacts, recordedSource, type FactsRecording, type SystemFacts } from "../../src/devices/facts.js";
import { DoesNotFitError } from "../../src/devices/plan.js";
import { ProfileError } from "../../src/devices/profiles.js";
import { MODEL } from "./helpers.js";

async function recorded(name: string): Promise<SystemFacts> {
  const rec = JSON.parse(readFileSync(path.resolve(import.meta.dirname, `../fixtures/facts/${name}.json`), "utf8")) as FactsRecording;
  return gatherFacts(recordedSource(rec));
}

describe("Runtime.open with a device profile", () => {
  it("takes threads (at most) and context size from the plan of a named profile, and reports the profile", async () => {
    const facts = await recorded("x64-xeon-2vcpu-cpu-only");
    await using rt = await Runtime.open({ model: MODEL, device: "generic-x64-cpu", facts, gpu: false });
    expect(rt.plan?.profile).toBe("generic-x64-cpu");
    expect(rt.threads).toBeGreaterThanOrEqual(1);
    expect(rt.threads).toBeLessThanOrEqual(rt.plan!.threads); // the fastest count up to the plan's, measured at open
    expect(rt.contextSize).toBe(rt.plan!.contextSize);
    expect(rt.plan!.gpuLayers).toBe(0);
    expect(rt.stats().profile).toBe("generic-x64-cpu");
    const r = await rt.session().generate("Once upon a time", { maxTokens: 4, temperature: 0 }).result;
    expect(r.generatedTokens).toBe(4);
  });

  it("explicit options win over the profile's defaults", async () => {
    const facts = await recorded("x64-xeon-2vcpu-cpu-only");
    await using rt = await Runtime.open({ model: MODEL, device: "auto", facts, gpu: false, contextSize: 256, threads: 1 });
    expect(rt.plan?.profile).toBe("generic-x64-cpu");
    expect(rt.contextSize).toBe(256);
    expect(rt.threads).toBe(1);
    expect(rt.plan!.contextSize).toBe(256);
  });

  it("passes the plan's GPU API to the backend: a CUDA plan on a machine without CUDA falls back to the wasm engine and says so", async () => {
    const facts = await recorded("x64-rtx4090-ryzen7950x");
    await using rt = await Runtime.open({ model: MODEL, device: "auto", facts, threads: 1 });
    expect(rt.plan?.profile).toBe("x64-nvidia");
    expect(rt.plan!.gpuLayers).toBe(rt.plan!.model.nLayer + 1);
    if (rt.backend.name === "native") {
      expect(rt.backend.device).toBe("cuda"); // a machine with CUDA
    } else {
      expect(rt.backendNotice).toMatch(/cuda/i);
    }
  });

  it("refuses a model that does not fit before loading it", async () => {
    const facts = await recorded("x64-xeon-2vcpu-cpu-only");
    const tiny: SystemFacts = { ...facts, memory: { ...facts.memory, totalBytes: 1 << 20, availableBytes: 1 << 20 } };
    const err = await Runtime.open({ model: MODEL, device: "generic-x64-cpu", facts: tiny, gpu: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DoesNotFitError);
    expect((err as Error).message).toMatch(/does not fit in host memory of generic-x64-cpu/);
  });

  it("an unknown profile name is a ProfileError listing the known ones", async () => {
    const facts = await recorded("x64-xeon-2vcpu-cpu-only");
    const err = await Runtime.open({ model: MODEL, device: "no-such-board", facts }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as Error).message).toMatch(/no such device profile; known: .*generic-x64-cpu/);
  });
});
