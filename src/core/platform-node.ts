// Node host adapter: reads wasm builds from build/wasm, sets V8 flags, counts cores, runs kernel workers in worker_threads.
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import type { HostWorker, Platform, WorkerInit } from "./platform.js";
import { nodeWorkerSource } from "./worker-source.js";

/** build/wasm next to this module: from src/core/*.ts (sources) or build/src/core/*.js (compiled). */
function wasmDir(): string {
  const candidates = ["../../build/wasm/", "../../../build/wasm/", "../../wasm/"];
  for (const rel of candidates) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir + "core-simd.wasm")) return dir;
  }
  throw new Error(`wasm core not built: no build/wasm/core-simd.wasm near ${fileURLToPath(import.meta.url)}; run npm run build:wasm`);
}

let relaxedEnabled: boolean | undefined;

export const nodePlatform: Platform = {
  async loadWasm(name: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(wasmDir() + name));
  },
  hardwareThreads(): number {
    return Math.max(1, availableParallelism());
  },
  enableRelaxedSimd(relaxedBuild: Uint8Array): boolean {
    if (relaxedEnabled === undefined) {
      try {
        // Node 20 needs the experimental flag; newer engines validate relaxed SIMD without it.
        const wa = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
        if (!wa.validate(relaxedBuild)) setFlagsFromString("--experimental-wasm-relaxed-simd");
        // Node 20's baseline compiler miscomputes relaxed int8 dot products inside loops: optimizing tier only.
        setFlagsFromString("--no-liftoff");
        relaxedEnabled = true;
      } catch {
        relaxedEnabled = false;
      }
    }
    return relaxedEnabled;
  },
  spawnWorker(data: WorkerInit): HostWorker {
    const w = new Worker(nodeWorkerSource(), { eval: true, workerData: data });
    w.unref();
    let done = false;
    const ready = new Promise<void>((resolve, reject) => {
      w.once("message", () => resolve());
      w.once("error", (e) => reject(e));
      w.once("exit", (code) => reject(new Error(`kernel worker exited early (code ${code})`)));
    });
    ready.catch(() => {});
    return {
      ready,
      terminate() {
        if (done) return;
        done = true;
        void w.terminate();
      },
    };
  },
};
