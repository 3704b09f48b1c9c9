// GPU offload on a real Vulkan driver (Mesa's lavapipe where there is no GPU): logits against the CPU backend,
// swaps on offloaded contexts, 1,000 seeded swaps and rescales, memory after many cycles, and the GPU report.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Runtime, type Session } from "../../src/runtime/index.js";
import { demoAdapterPaths } from "../../src/paths.js";
import { VULKAN_LIVE_SWAP_NOTE } from "../../src/backends/native.js";
import { BackendUnavailableError } from "../../src/errors.js";
import { openGguf } from "../../src/gguf/reader.js";
import { mulberry32 } from "../../src/random.js";
import { MODEL, MODEL_Q8, S1, S2, sameArray } from "../runtime/helpers.js";
import { repoRoot } from "../fixtures.js";
import { announceRun, announceSkip, showVulkanDeviceToThisProcess, vulkanHere } from "./vulkan-process.js";

showVulkanDeviceToThisProcess();
const vk = await vulkanHere();
if ("reason" in vk) announceSkip("offload", vk.reason);
else announceRun("offload", vk);

const DEMO = demoAdapterPaths();
const PROMPT = "Once upon a time";
const CTX = 128;
/** llama.cpp's n_gpu_layers for "full" (every layer and the output) and a partial offload (the output and 2 layers). */
const OFFLOADS = [{ name: "full offload", gpuLayers: undefined, layers: 6 }, { name: "partial offload", gpuLayers: 3, layers: 3 }];
const MODELS = [{ name: "stories260K F32", file: MODEL }, { name: "stories260K Q8_0", file: MODEL_Q8 }];
const PAIRS = [{ name: "demo adapters", a: DEMO.a, b: DEMO.b }, { name: "fixture adapters", a: S1, b: S2 }];
const SETS: Record<string, number>[] = [{}, { A: 1 }, { B: 1 }, { A: 0.5, B: 0.5 }];
/**
 * Stated bounds for Vulkan against the CPU backend, normwise over the whole vocabulary: max|a - b| / max|b| on
 * centred log-probabilities (log p differs from the logit by one constant). F32 weights: the shaders' f32 order of
 * summation only; Q8_0: the CPU backend also rounds the activations to 8 bits, the Vulkan shaders do not.
 */
const BOUND = { "stories260K F32": 2e-3, "stories260K Q8_0": 2e-2 } as Record<string, number>;

/** Log-probabilities centred on their mean (the logits up to one constant). */
function centred(lp: Float64Array): Float64Array {
  const mean = lp.reduce((s, x) => s + x, 0) / lp.length;
  return lp.map((x) => x - mean);
}
function normwise(a: Float64Array, b: Float64Array): number {
  const ca = centred(a);
  const cb = centred(b);
  let num = 0;
  let den = 0;
  for (let i = 0; i < cb.length; i++) {
    num = Math.max(num, Math.abs(ca[i] - cb[i]));
    den = Math.max(den, Math.abs(cb[i]));
  }
  return num / den;
}
const argmax = (lp: Float64Array) => lp.indexOf(Math.max(...lp));

/** Bytes of the tensors llama.cpp puts on the GPU for n_gpu_layers = k: the output layer, then the last k - 1 blocks. */
function gpuWeightBytes(file: string, k: number): { gpu: number; total: number } {
  const f = openGguf(file);
  try {
    const nLayer = Math.max(...f.tensors.map((t) => /^blk\.(\d+)\./.exec(t.name)).filter((m) => m).map((m) => Number(m![1]))) + 1;
    const onGpu = (name: string) => {
      const m = /^blk\.(\d+)\./.exec(name);
      if (m) return Number(m[1]) >= nLayer - (k - 1);
      return k >= 1 && name !== "token_embd.weight";
    };
    let gpu = 0;
    let total = 0;
    for (const t of f.tensors) {
      total += t.byteSize;
      if (onGpu(t.name)) gpu += t.byteSize;
    }
    return { gpu, total };
  } finally {
    f.close();
  }
}

async function openVulkan(file: string, gpuLayers: number | undefined): Promise<Runtime> {
  const rt = await Runtime.open({ model: file, gpu: "vulkan", gpuLayers, threads: 1, contextSize: CTX });
  await rt.adapters.load("a", DEMO.a);
  await rt.adapters.load("b", DEMO.b);
  await rt.adapters.load("s1", S1);
  await rt.adapters.load("s2", S2);
  return rt;
}
const names = (pair: (typeof PAIRS)[number]) => (pair.a === S1 ? { A: "s1", B: "s2" } : { A: "a", B: "b" });
const bind = (set: Record<string, number>, n: { A: string; B: string }) =>
  Object.fromEntries(Object.entries(set).map(([k, v]) => [n[k as "A" | "B"], v]));

describe.skipIf("reason" in vk)("Vulkan offload", () => {
  const cpu = new Map<string, Runtime>();
  const cpuLogProbs = new Map<string, Float64Array>();
  beforeAll(async () => {
    for (const m of MODELS) {
      const rt = await Runtime.open({ model: m.file, gpu: false, threads: 1, contextSize: CTX });
      await rt.adapters.load("a", DEMO.a);
      await rt.adapters.load("b", DEMO.b);
      await rt.adapters.load("s1", S1);
      await rt.adapters.load("s2", S2);
      cpu.set(m.name, rt);
    }
  });
  afterAll(async () => {
    for (const rt of cpu.values()) await rt.dispose();
  });

  /** The CPU backend's next-token log-probs for a model and adapter set (computed once). */
  async function onCpu(model: string, set: Record<string, number>): Promise<Float64Array> {
    const key = `${model}|${JSON.stringify(set)}`;
    let lp = cpuLogProbs.get(key);
    if (!lp) {
      const s = cpu.get(model)!.session({ adapters: set });
      lp = await s.nextLogProbs(PROMPT);
      await s.dispose();
      cpuLogProbs.set(key, lp);
    }
    return lp;
  }

  for (const m of MODELS) {
    for (const o of OFFLOADS) {
      describe(`${m.name}, ${o.name}`, () => {
        let rt: Runtime;
        beforeAll(async () => { rt = await openVulkan(m.file, o.gpuLayers); });
        afterAll(async () => rt?.dispose());

        it("the native backend reports the GPU, its layers there and llama.cpp's bytes on it", async () => {
          const s = rt.session();
          await s.ready();
          const g = (await rt.backend.memory()).gpu!;
          expect(g).toBeDefined();
          expect(rt.backend.device).toBe("vulkan");
          expect(g.api).toBe("vulkan");
          expect(g.devices.join(", ")).toBe((vk as { device: string }).device);
          expect(g.layers).toBe(o.layers);
          expect(g.totalLayers).toBe(6);
          // Weights: exactly the tensors of the offloaded layers on the device. The host's share is the mapped file range
          // holding the rest, which with a partial offload also spans tensors copied to the device (pages never read).
          const w = gpuWeightBytes(m.file, o.layers);
          expect(g.modelBytes).toBe(w.gpu);
          expect(g.hostModelBytes).toBeGreaterThanOrEqual(w.total - w.gpu);
          expect(g.hostModelBytes).toBeLessThanOrEqual(w.total);
          if (o.gpuLayers === undefined) expect(g.hostModelBytes).toBe(w.total - w.gpu);
          // The context's KV cache and compute buffer: on the device for the offloaded layers.
          expect(g.contextBytes).toBeGreaterThan(0);
          expect(g.hostContextBytes).toBeGreaterThan(0);
          expect((await rt.backend.memory()).vramTotal).toBe(g.vram.total);
          expect(rt.stats().device).toBe("vulkan");
          await s.dispose();
        });

        for (const pair of PAIRS) {
          it(`next-token logits of base, A, B and a mix agree with the CPU backend (${pair.name})`, async () => {
            const n = names(pair);
            const s = rt.session();
            const errors: string[] = [];
            for (const set of SETS) {
              const bound = bind(set, n);
              await s.setAdapters(bound);
              const got = await s.nextLogProbs(PROMPT);
              const want = await onCpu(m.name, bound);
              const err = normwise(got, want);
              errors.push(`${JSON.stringify(bound)} ${err.toExponential(2)}`);
              expect(err, JSON.stringify(bound)).toBeLessThanOrEqual(BOUND[m.name]);
              expect(argmax(got), JSON.stringify(bound)).toBe(argmax(want));
              // The adapter's own effect is far larger than the difference between the backends.
              if (Object.keys(bound).length) expect(normwise(want, await onCpu(m.name, {}))).toBeGreaterThan(5 * BOUND[m.name]);
            }
            console.log(`${m.name}, ${o.name}, ${pair.name}: Vulkan vs CPU normwise error ${errors.join("; ")}`);
            await s.dispose();
          });
        }

        it("swap, rescale, mix and unload on the offloaded context give what a fresh session gives", async () => {
          expect(rt.liveSwap).toBe(false); // on Vulkan each change gets a new context (see VULKAN_LIVE_SWAP_NOTE)
          expect(rt.backend.liveSwapNote).toBe(VULKAN_LIVE_SWAP_NOTE);
          const asked = await rt.backend.createContext({ contextSize: CTX, adapters: [], live: true });
          expect(asked.liveSwap).toBe(false);
          await asked.dispose();
          const s = rt.session({ adapters: { a: 1 } });
          const steps: Record<string, number>[] = [{ b: 1 }, { b: 0.25 }, { a: 0.5, s1: -0.5 }, { s2: 1, b: 0.5 }, {}, { a: -1 }];
          for (const set of steps) {
            await s.setAdapters(set);
            const got = await s.nextLogProbs(PROMPT);
            const fresh = rt.session({ adapters: set });
            const want = await fresh.nextLogProbs(PROMPT);
            await fresh.dispose();
            expect(sameArray(got, want), JSON.stringify(set)).toBe(true);
          }
          // Unload an adapter the session is using: it is detached, and the session keeps working without it.
          await s.setAdapters({ a: 1, s1: 0.5 });
          await s.nextLogProbs(PROMPT);
          await rt.adapters.unload("s1");
          expect(s.adapters).toEqual({ a: 1 });
          const after = await s.nextLogProbs(PROMPT);
          const fresh = rt.session({ adapters: { a: 1 } });
          expect(sameArray(after, await fresh.nextLogProbs(PROMPT))).toBe(true);
          await fresh.dispose();
          const text = await s.complete(PROMPT, { maxTokens: 6 });
          expect(text.generatedTokens).toBe(6);
          expect(s.swaps.live).toBe(0);
          expect(s.swaps.recreated).toBeGreaterThanOrEqual(steps.length);
          await s.dispose();
          await rt.adapters.load("s1", S1);
        });
      });
    }
  }

  it("asking for live swaps on an offloaded Vulkan model is a clear error", async () => {
    const err = await Runtime.open({ model: MODEL, gpu: "vulkan", swap: "live", threads: 1, contextSize: CTX }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toContain(VULKAN_LIVE_SWAP_NOTE);
  });
});

describe.skipIf("reason" in vk)("1,000 seeded swaps and rescales interleaved with generation (stories260K F32, full offload)", () => {
  it("every output equals a fresh session's; memory is flat after warm-up", async () => {
    const rt = await openVulkan(MODEL, undefined);
    try {
      const rnd = mulberry32(15);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
      const NAMES = ["a", "b", "s1"];
      const SCALES = [1, 0.5, -0.75];
      const sessions = [rt.session(), rt.session()];
      const refs = new Map<string, Float64Array | string>();
      const key = (s: Session) => JSON.stringify(Object.entries(s.adapters).sort());
      let swaps = 0;
      let rescales = 0;
      let checked = 0;
      const mismatches: string[] = [];
      let warm: { rss: number; contextBytes: number } | undefined;
      const OPS = 1000;
      // lavapipe evaluates a graph in about 50 ms: an output is checked after every eighth change.
      const CHECK_EVERY = 8;
      // Memory is compared after the first half: by then every adapter set has been seen (and its shaders built).
      const WARM = 500;
      for (let i = 0; i < OPS; i++) {
        const s = pick(sessions);
        const current = Object.keys(s.adapters);
        if (current.length === 0 || rnd() < 0.5) {
          // swap: a new set of up to two adapters
          const set: Record<string, number> = {};
          for (const n of NAMES) if (rnd() < 0.4 && Object.keys(set).length < 2) set[n] = pick(SCALES);
          await s.setAdapters(set);
          swaps++;
        } else {
          // rescale: the same adapters, new scales
          await s.setAdapters(Object.fromEntries(current.map((n) => [n, pick(SCALES)])));
          rescales++;
        }
        if (i % CHECK_EVERY === CHECK_EVERY - 1) {
          // generation: the next-token distribution (exact) or a short seeded sampled continuation (token for token)
          const sampled = i % (2 * CHECK_EVERY) === 2 * CHECK_EVERY - 1;
          const run = async (x: Session) => sampled
            ? (await x.complete(PROMPT, { maxTokens: 2, temperature: 0.9, seed: 7 })).tokens.join(" ")
            : await x.nextLogProbs(PROMPT);
          const got = await run(s);
          const k = `${sampled}|${key(s)}`;
          let want = refs.get(k);
          if (want === undefined) {
            const fresh = rt.session({ adapters: s.adapters });
            want = await run(fresh);
            await fresh.dispose();
            refs.set(k, want);
          }
          checked++;
          const same = typeof want === "string" ? got === want : sameArray(got as Float64Array, want);
          if (!same) mismatches.push(`op ${i} ${key(s)}`);
        }
        if (i === WARM - 1) {
          const g = (await rt.backend.memory()).gpu!;
          warm = { rss: process.memoryUsage().rss, contextBytes: g.contextBytes };
        }
      }
      expect(mismatches).toEqual([]);
      expect(swaps + rescales).toBe(OPS);
      expect(swaps).toBeGreaterThan(300);
      expect(rescales).toBeGreaterThan(300);
      expect(checked).toBe(OPS / CHECK_EVERY);
      // No leak: each swap made a new context on the device (KV cache and compute buffers: about 1.2 MiB here, and on
      // lavapipe device memory is host memory), so leaking one context in twenty swaps would add about 27 MiB in
      // the second half. Resident memory still creeps while the allocator settles (measured 6 to 10 MiB from 500 to
      // 1,000 operations, 3 MiB from 2,000 to 3,000: slowing down, not growing with the swaps).
      const g = (await rt.backend.memory()).gpu!;
      const growth = process.memoryUsage().rss - warm!.rss;
      console.log(`1,000 swaps: ${swaps} swaps, ${rescales} rescales, ${checked} outputs checked against ${refs.size} fresh sessions; ` +
        `RSS ${(warm!.rss / 2 ** 20).toFixed(1)} MiB after ${WARM} operations, ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MiB after ${OPS}; ` +
        `llama.cpp's context bytes on the device ${warm!.contextBytes} -> ${g.contextBytes}`);
      expect(g.contextBytes).toBe(warm!.contextBytes);
      expect(growth).toBeLessThan(24 * 2 ** 20);
      for (const s of sessions) await s.dispose();
      expect((await rt.backend.memory()).gpu!.contextBytes).toBe(0);
    } finally {
      await rt.dispose();
    }
  }, 600_000);
});

// Why live swaps are off on Vulkan: llama.cpp itself (no lora-edge code) corrupts memory when an offloaded
// context's adapters change. Run in a child process, on a software device, where the corruption aborts the process.
describe.skipIf("reason" in vk || !(vk as { software: boolean }).software)("llama.cpp's live adapter change on an offloaded Vulkan context", () => {
  it("still corrupts memory in this node-llama-cpp: lora-edge must keep making new contexts there", async () => {
    const script = path.join(repoRoot, "test/vulkan/live-swap-child.mjs");
    const r = await promisify(execFile)(process.execPath, [script, MODEL, DEMO.a, DEMO.b, "30"], { timeout: 300_000 })
      .then(() => ({ crashed: false, signal: "" }), (e: { signal?: string; code?: number }) => ({ crashed: true, signal: String(e.signal ?? e.code) }));
    console.log(`node-llama-cpp's _setLoras on an offloaded lavapipe context: ${r.crashed ? `the process died (${r.signal})` : "survived 30 changes"}`);
    expect(r.crashed, "the upstream bug looks fixed: live swaps on Vulkan may be turned back on (see VULKAN_LIVE_SWAP_NOTE)").toBe(true);
  });
});
