// lora-edge devices and synth through the CLI dispatcher: text, JSON, refusals and exit codes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { cli } from "../cli-capture.js";
import { openGguf } from "../../src/gguf/reader.js";
import { scratchDir } from "../fixtures.js";


const facts = (name: string) => path.resolve(import.meta.dirname, `../fixtures/facts/${name}.json`);
let dir: string;
let model: string;
beforeAll(async () => {
  dir = scratchDir("devices-cli-");
  model = path.join(dir, "m.gguf");
  const r = await cli("synth", "model", "smollm-135m", "--layers", "2", "--vocab", "2000", "--type", "Q8_0", "-o", model);
  expect(r.code).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lora-edge devices", () => {
  it("--profile NAME plans against that profile's reference memory (or --memory / --vram), not this machine's", async () => {
    let r = await cli("devices", "-m", model, "--profile", "jetson-orin-nano", "--json");
    expect(r.code, r.err).toBe(0);
    let j = JSON.parse(r.out);
    expect(j.plan.budget.totalBytes).toBe(8 * 2 ** 30);
    expect(j.plan.backend).toBe("cuda");
    expect(j.plan.notes[0]).toMatch(/^planned for jetson-orin-nano with 8 GiB of memory/);
    r = await cli("devices", "-m", model, "--profile", "x64-nvidia", "--memory", "4", "--vram", "2", "--json");
    j = JSON.parse(r.out);
    expect(j.plan.budget.totalBytes).toBe(4 * 2 ** 30);
    expect(j.plan.budget.gpuUsableBytes).toBeLessThanOrEqual(2 * 2 ** 30);
    expect(j.plan.gpuLayers).toBeGreaterThan(0);
    expect((await cli("devices", "--memory", "4")).code).toBe(2);
  });

  it("prints the detected profile, build steps and power modes from a recording", async () => {
    const r = await cli("devices", "--facts", facts("jetson-orin-nano-8gb-super-jp62"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^device\s+jetson-orin-nano: /m);
    expect(r.out).toContain("L4T R36.4.3");
    expect(r.out).toContain("NODE_LLAMA_CPP_CMAKE_OPTION_CMAKE_CUDA_ARCHITECTURES=87");
    expect(r.out).toMatch(/^power\s+15W \(nvpmodel -m 0\)/m);
  });

  it("--json with -m gives profile, facts and plan", async () => {
    const r = await cli("devices", "--facts", facts("apple-m2-pro-32gb"), "-m", model, "-c", "4096", "--json");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.profile.name).toBe("apple-silicon");
    expect(j.threads).toBe(8);
    expect(j.facts.cpu.model).toBe("Apple M2 Pro");
    expect(j.plan).toMatchObject({ contextSize: 4096, gpuLayers: 3, memoryModel: "unified" });
    expect(j.plan.bytes.total).toBeGreaterThan(j.plan.bytes.weights);
  });

  it("a plan that does not fit exits 1 with the numbers", async () => {
    const r = await cli("devices", "--facts", facts("raspberry-pi-5-8gb"), "-m", model, "-c", "2000000");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not fit in host memory of raspberry-pi-5: needs [\d.]+ GiB .* usable; the largest context that fits is \d+/);
    const j = JSON.parse((await cli("devices", "--facts", facts("raspberry-pi-5-8gb"), "-m", model, "-c", "2000000", "--json")).out);
    expect(j.refusal).toMatchObject({ code: "DOES_NOT_FIT", where: "host memory" });
    expect(j.refusal.neededBytes).toBeGreaterThan(j.refusal.availableBytes);
  });

  it("--list, --record and usage errors", async () => {
    const l = await cli("devices", "--list");
    expect(l.out.trim().split("\n")).toHaveLength(9);
    const rec = await cli("devices", "--facts", facts("raspberry-pi-5-8gb"), "--record");
    expect(JSON.parse(rec.out)).toMatchObject({ recordingVersion: 1, os: { arch: "arm64" } });
    expect((await cli("devices", "-c", "100")).code).toBe(2);
    expect((await cli("devices", "-m", model, "-c", "zero")).code).toBe(2);
    expect((await cli("devices", "--profile", "no-such")).code).toBe(1);
    expect((await cli("devices", "--facts", model)).code).toBe(1);
  });
});

describe("lora-edge synth", () => {
  it("lists shapes, writes an adapter, rejects bad options", async () => {
    expect((await cli("synth", "shapes")).out).toMatch(/llama-3\.2-1b\s+llama\s+n_embd 2048, 16 layers, 32\/8 heads, n_ff 8192, vocab 128256/);
    const a = path.join(dir, "a.gguf");
    const r = await cli("synth", "adapter", "smollm-135m", "--layers", "2", "-r", "8", "--modules", "q,v", "-o", a, "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ tensors: 8 });
    const f = openGguf(a);
    expect(f.get("adapter.lora.alpha")).toBe(8);
    expect(f.tensor("blk.1.attn_v.weight.lora_b")!.ne).toEqual([8, 192]);
    f.close();
    expect((await cli("synth", "model", "gpt-5", "-o", a)).code).toBe(1);
    expect((await cli("synth", "model", "tiny", "-o", a, "--type", "Q3_K")).code).toBe(2);
    expect((await cli("synth", "adapter", "tiny", "-o", a, "--modules", "qkv")).code).toBe(2);
    expect((await cli("synth", "model", "tiny")).code).toBe(2);
    expect(readFileSync(a).length).toBeGreaterThan(0);
  });
});
