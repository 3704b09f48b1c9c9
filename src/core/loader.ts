// Compiles the wasm builds once, checks relaxed SIMD computes correctly here, and instantiates cores over fresh memories.
import { Core, BuildName } from "./core.js";
import type { Platform } from "./platform.js";
import { wasm, WasmModule, WasmMemory } from "./wasm-api.js";
import { mulberry32 } from "../random.js";

export interface Builds {
  simd: WasmModule;
  relaxed?: WasmModule;
  threads?: WasmModule;
  threadsRelaxed?: WasmModule;
  /** Why relaxed SIMD is not used, when it is not. */
  relaxedProblem?: string;
}

export interface CoreOptions {
  /** Which build: the best that runs correctly here (default), or one by name. */
  build?: "best" | "simd" | "relaxed";
  /** Allow relaxed SIMD (engine flags, self-test) at all; default true. */
  relaxed?: boolean;
  /** Largest size the core's memory may grow to, in bytes (default 4 GiB). */
  maxBytes?: number;
  platform?: Platform;
}

const FILES = {
  simd: "core-simd.wasm",
  relaxed: "core-relaxed.wasm",
  threads: "core-threads.wasm",
  threadsRelaxed: "core-threads-relaxed.wasm",
} as const;

const cache = new WeakMap<Platform, Map<string, Promise<Builds>>>();

/** Compiles (once per platform and setting) every build usable here. */
export function compileBuilds(platform: Platform, relaxed = true): Promise<Builds> {
  let m = cache.get(platform);
  if (!m) cache.set(platform, (m = new Map()));
  const key = String(relaxed);
  let p = m.get(key);
  if (!p) m.set(key, (p = doCompile(platform, relaxed)));
  return p;
}

async function doCompile(platform: Platform, relaxed: boolean): Promise<Builds> {
  // Engine flags must be set before anything is compiled.
  const rBytes = relaxed ? await platform.loadWasm(FILES.relaxed) : undefined;
  const flagsOk = rBytes ? platform.enableRelaxedSimd(rBytes) : false;
  const simdBytes = await platform.loadWasm(FILES.simd);
  const builds: Builds = { simd: await wasm.compile(simdBytes) };
  try {
    builds.threads = await wasm.compile(await platform.loadWasm(FILES.threads));
  } catch {
    builds.threads = undefined;
  }
  if (!relaxed) {
    builds.relaxedProblem = "disabled";
    return builds;
  }
  if (!flagsOk) {
    builds.relaxedProblem = "engine flags could not be set";
    return builds;
  }
  if (!rBytes || !wasm.validate(rBytes)) {
    builds.relaxedProblem = "relaxed SIMD does not validate";
    return builds;
  }
  const rMod = await wasm.compile(rBytes);
  const problem = selfTest(builds.simd, rMod);
  if (problem) {
    builds.relaxedProblem = problem;
    return builds;
  }
  builds.relaxed = rMod;
  if (builds.threads) {
    try {
      const trBytes = await platform.loadWasm(FILES.threadsRelaxed);
      if (wasm.validate(trBytes)) builds.threadsRelaxed = await wasm.compile(trBytes);
    } catch {
      builds.threadsRelaxed = undefined;
    }
  }
  return builds;
}

/** A single-threaded core on `platform` over a fresh memory, on the best build that computes correctly there. */
export async function loadCoreOn(platform: Platform, opts: CoreOptions = {}): Promise<Core> {
  const want = opts.build ?? "best";
  // Every build is compiled under the same engine flags, so builds compare fairly.
  const builds = await compileBuilds(platform, opts.relaxed ?? true);
  const maxBytes = opts.maxBytes ?? 65536 * 65536;
  const pages = Math.ceil(maxBytes / 65536);
  if (want === "relaxed" && !builds.relaxed) throw new Error(`relaxed SIMD build unavailable: ${builds.relaxedProblem}`);
  if (builds.relaxed && want !== "simd") return instantiate(builds.relaxed, newMemory(false, pages), "relaxed", maxBytes);
  return instantiate(builds.simd, newMemory(false, pages), "simd", maxBytes);
}

/** A fresh memory for a build: shared (threads builds) or not; maximum in 64 KiB pages. */
export function newMemory(shared: boolean, maxPages = 65536, initialPages = 16): WasmMemory {
  return new wasm.Memory({ initial: initialPages, maximum: maxPages, shared });
}

export function instantiate(module: WasmModule, memory: WasmMemory, build: BuildName, maxBytes?: number): Core {
  const inst = new wasm.Instance(module, {
    env: {
      memory,
      abort() {
        throw new Error("wasm abort");
      },
    },
  });
  return new Core(inst, memory, build, maxBytes);
}

/**
 * Runs the integer-dot kernels of the relaxed build against the baseline build on fixed pseudo-random data
 * (several passes, rows in loops); any difference rejects the relaxed build.
 */
function selfTest(simd: WasmModule, relaxed: WasmModule): string | undefined {
  try {
    const a = instantiate(simd, newMemory(false, 256, 4), "simd");
    const b = instantiate(relaxed, newMemory(false, 256, 4), "relaxed");
    const rows = 64, cols = 512;
    const rnd = mulberry32(12345);
    const x = Float32Array.from({ length: cols }, () => rnd() * 2 - 1);
    for (const [type, block, bytes] of [[2, 32, 18], [3, 32, 20], [12, 256, 144]] as const) {
      const w = new Uint8Array((rows * cols / block) * bytes);
      for (let i = 0; i < w.length; i++) w[i] = (rnd() * 256) | 0;
      // keep f16 scales finite and moderate: first bytes of each block (and the Q4_K dmin)
      for (let o = 0; o < w.length; o += bytes) {
        w[o + 1] = 0x2c + ((rnd() * 8) | 0);
        if (type !== 2) w[o + 3] = 0x2c + ((rnd() * 8) | 0);
      }
      const ma = a.upload(type, w, rows, cols), mb = b.upload(type, w, rows, cols);
      for (let pass = 0; pass < 3; pass++) {
        const ya = a.gemv(ma, x, { x8: true }), yb = b.gemv(mb, x, { x8: true });
        // Same integer sums, different lane grouping: only float rounding may differ.
        let maxDiff = 0, maxRef = 0;
        for (let i = 0; i < rows; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(ya[i] - yb[i]));
          maxRef = Math.max(maxRef, Math.abs(ya[i]));
        }
        if (!(maxDiff <= 1e-5 * maxRef)) return `relaxed SIMD self-test failed (type ${type}: normwise error ${maxDiff / maxRef})`;
      }
    }
    return undefined;
  } catch (e) {
    return `relaxed SIMD self-test threw: ${(e as Error).message}`;
  }
}
