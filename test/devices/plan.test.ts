// Tests the memory plan: arithmetic on generated models, placement per memory model, refusals, and llama.cpp's own allocations.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { planWithFacts, DoesNotFitError, computeBufferBytes } from "../../src/devices/plan.js";
import { gatherFacts, recordedSource, type FactsRecording, type SystemFacts } from "../../src/devices/facts.js";
import { LlamaLogCollector, parseBufferSizes } from "../../src/devices/llama-log.js";
import { synthAdapter, synthModel } from "../../src/tools/synth.js";
import { openGguf } from "../../src/gguf/reader.js";
import { fixture, scratchDir } from "../fixtures.js";

const factsDir = path.resolve(import.meta.dirname, "../fixtures/facts");
const facts = async (name: string): Promise<SystemFacts> =>
  gatherFacts(recordedSource(JSON.parse(readFileSync(path.join(factsDir, `${name}.json`), "utf8")) as FactsRecording));
const MiB = 2 ** 20;

let dir: string;
let s15: string; // stories15M shape, Q4_0
let s15lora: string;
let smol: string; // SmolLM-135M shape (tied embeddings), 4 layers, Q8_0

beforeAll(() => {
  dir = scratchDir("plan-");
  s15 = synthModel(path.join(dir, "s15.gguf"), { shape: "stories15m", type: "Q4_0", vocab: 4096 }).path;
  s15lora = synthAdapter(path.join(dir, "s15-lora.gguf"), { shape: "stories15m", rank: 8 }).path;
  smol = synthModel(path.join(dir, "smol.gguf"), { shape: "smollm-135m", type: "Q8_0", layers: 4, vocab: 8192 }).path;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("plan arithmetic", () => {
  it("weights from the tensor table per layer, KV cache from hyper-parameters", async () => {
    const f = openGguf(s15);
    const p = planWithFacts({ model: f, contextSize: 1000 }, await facts("x64-xeon-2vcpu-cpu-only"));
    const sum = f.tensors.reduce((s, t) => s + t.byteSize, 0);
    expect(p.bytes.weights).toBe(sum);
    expect(p.bytes.weightsPerLayer).toHaveLength(6);
    const blk0 = f.tensors.filter((t) => t.name.startsWith("blk.0.")).reduce((s, t) => s + t.byteSize, 0);
    expect(p.bytes.weightsPerLayer[0]).toBe(blk0);
    expect(p.bytes.inputLayer).toBe(f.tensor("token_embd.weight")!.byteSize);
    expect(p.kvCells).toBe(1024);
    expect(p.bytes.kvCache).toBe(6 * 1024 * 288 * 2 * 2);
    expect(p.bytes.total).toBe(p.bytes.weights + p.bytes.adapters + p.bytes.kvCache + p.bytes.compute + p.bytes.output);
    expect(p).toMatchObject({ profile: "generic-x64-cpu", gpuLayers: 0, threads: 2, memoryModel: "cpu" });
    f.close();
  });

  it("adds adapters per layer", async () => {
    const p = planWithFacts({ model: s15, adapters: [s15lora], contextSize: 512 }, await facts("x64-xeon-2vcpu-cpu-only"));
    const a = openGguf(s15lora);
    expect(p.bytes.adapters).toBe(a.tensors.reduce((s, t) => s + t.byteSize, 0));
    expect(p.bytes.adaptersPerLayer.reduce((x, y) => x + y, 0)).toBe(p.bytes.adapters);
    a.close();
  });

  it("unified memory (Jetson, Apple) counts every byte once and offloads all layers", async () => {
    for (const name of ["jetson-orin-nano-8gb-super-jp62", "apple-m2-pro-32gb"]) {
      const p = planWithFacts({ model: smol, contextSize: 2048 }, await facts(name));
      expect(p.memoryModel).toBe("unified");
      expect(p.gpuLayers).toBe(5);
      // Counted once; CUDA on a Jetson also copies the tied output matrix (SmolLM ties it to token_embd).
      expect(p.placement.hostBytes).toBe(p.bytes.total + (name.startsWith("jetson") ? p.bytes.inputLayer : 0));
      expect(p.placement.gpuBytes).toBeLessThanOrEqual(p.bytes.total + p.bytes.inputLayer);
    }
  });

  it("a Jetson without its CUDA build plans for the CPU and says so", async () => {
    const p = planWithFacts({ model: smol }, await facts("jetson-orin-nano-8gb-prebuilt-cpu"));
    expect(p.gpuLayers).toBe(0);
    expect(p.backend).toBe("cpu");
    expect(p.notes.join(" ")).toMatch(/no cuda backend/);
  });

  it("discrete VRAM: offloads what fits, the rest stays in host memory", async () => {
    const f = await facts("x64-rtx4090-ryzen7950x");
    const all = planWithFacts({ model: smol, contextSize: 2048 }, f);
    expect(all.gpuLayers).toBe(5);
    expect(all.placement.hostBytes).toBeLessThan(all.bytes.total);
    // A GPU with room for the compute buffer, the output layer and one block only (llama.cpp offloads the output first).
    const small: SystemFacts = structuredClone(f);
    const room = all.bytes.compute + all.bytes.outputLayer + (all.bytes.weightsPerLayer[3] + all.bytes.kvPerLayer) + 512 * MiB + 1000;
    small.gpu.vram = { total: room, used: 0, free: room, unifiedSize: 0 };
    const part = planWithFacts({ model: smol, contextSize: 2048 }, small);
    expect(part.gpuLayers).toBe(2);
    expect(part.notes.join(" ")).toMatch(/2 of 5 layers fit in VRAM/);
    expect(part.placement.hostBytes).toBeGreaterThan(all.placement.hostBytes);
    expect(part.placement.gpu!.weights).toBe(all.bytes.outputLayer + all.bytes.weightsPerLayer[3]);
  });

  it("refuses with the numbers and the largest context that fits", async () => {
    const f = await facts("raspberry-pi-5-8gb");
    const small = planWithFacts({ model: smol, contextSize: 256 }, f);
    const usable = small.bytes.total + Math.round(small.bytes.kvCache * 3.5);
    f.memory.availableBytes = f.memory.availableBytes = 768 * MiB + usable; // the profile reserves 768 MiB
    let err: unknown;
    try { planWithFacts({ model: smol, contextSize: 32768 }, f); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DoesNotFitError);
    const e = err as DoesNotFitError;
    expect(e.where).toBe("host memory");
    expect(e.availableBytes).toBe(usable);
    expect(e.neededBytes).toBe(e.plan.bytes.total);
    expect(e.message).toMatch(/needs [\d.]+ GiB \(weights .*KV cache .* for 32768 tokens.*\), [\d.]+ GiB usable; the largest context that fits is \d+/);
    const max = e.plan.maxContextSize;
    expect(max).toBeGreaterThanOrEqual(512);
    expect(max).toBeLessThan(2048);
    expect(planWithFacts({ model: smol, contextSize: max }, f).bytes.total).toBeLessThanOrEqual(usable);
    expect(() => planWithFacts({ model: smol, contextSize: max + 256 }, f)).toThrow(DoesNotFitError);
  });

  it("compute buffer: flash attention keeps it flat in the context, without it grows", () => {
    const h = { architecture: "llama", nEmbd: 2048, nLayer: 16, nHead: 32, nHeadKv: 8, nFf: 8192, nVocab: 32000,
      ropeDims: 64, ropeBase: 5e5, contextLength: 8192, rmsEps: 1e-5, headDim: 64 };
    expect(computeBufferBytes(h, 4096, 512, true)).toBe(computeBufferBytes(h, 2048, 512, true));
    expect(computeBufferBytes(h, 4096, 512, false)).toBeGreaterThan(1.5 * computeBufferBytes(h, 2048, 512, false));
  });
});

// What llama.cpp itself allocates on this machine (CPU): model size, KV, compute, output and LoRA buffers.
describe("plan against llama.cpp (node-llama-cpp, CPU)", () => {
  let llama: Llama;
  const log = new LlamaLogCollector();
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never", skipDownload: true, maxThreads: 2, logLevel: LlamaLogLevel.debug,
      logger: log.logger, progressLogs: false });
  });
  afterAll(async () => { await llama?.dispose(); });

  const cases = [
    { name: "stories260K F32 (real model), 1000-token context", model: () => fixture("models/stories260K.gguf"), adapters: () => [fixture("adapters/stories260K-lora-synthetic-r4-s1.gguf")], ctx: 1000, fa: true },
    { name: "stories15M-shape Q4_0 + rank-8 adapter, 2048", model: () => s15, adapters: () => [s15lora], ctx: 2048, fa: true },
    { name: "SmolLM-shape Q8_0 (tied), 1024, no flash attention", model: () => smol, adapters: () => [], ctx: 1024, fa: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const p = planWithFacts({ model: c.model(), adapters: c.adapters(), contextSize: c.ctx, batchSize: 512, flashAttention: c.fa, profile: "generic-x64-cpu" },
        await gatherFacts(recordedSource(JSON.parse(readFileSync(path.join(factsDir, "x64-xeon-2vcpu-cpu-only.json"), "utf8")))));
      log.clear();
      const model = await llama.loadModel({ modelPath: c.model() });
      try {
        const ctx = await model.createContext({ contextSize: c.ctx, batchSize: 512, threads: 2, flashAttention: c.fa,
          lora: c.adapters().length ? { adapters: c.adapters().map((filePath) => ({ filePath, scale: 1 })) } : undefined });
        expect(await log.waitFor(/sched_reserve:\s+CPU compute buffer size/, 10_000)).toBe(true);
        if (c.adapters().length) expect(await log.waitFor(/LoRA buffer size/, 10_000)).toBe(true);
        const m = parseBufferSizes(log.text());
        await ctx.dispose();
        // Stated tolerances: weights, adapters and KV cache within 1% (llama.cpp logs MiB with 2 decimals, so
        // at least 0.01 MiB), compute buffer within 10%, the total within 5%.
        const near = (plan: number, real: number, rel: number) =>
          expect(Math.abs(plan - real), `plan ${plan} vs llama.cpp ${real}`).toBeLessThanOrEqual(Math.max(rel * real, 0.01 * MiB));
        near(p.bytes.weights, model.size, 0.01);
        near(p.bytes.kvCache, m.kvBytes, 0.01);
        if (c.adapters().length) near(p.bytes.adapters, m.loraBytes, 0.01);
        near(p.bytes.compute, m.computeBytes, 0.10);
        near(p.bytes.total, model.size + m.loraBytes + m.kvBytes + m.computeBytes + m.outputBytes, 0.05);
      } finally {
        await model.dispose();
      }
    });
  }
});
