// Browser host adapter: fetches wasm builds from a base URL, counts cores, runs kernel workers as Web Workers.
import { browser } from "./browser-api.js";
import { wasm } from "./wasm-api.js";
import type { HostWorker, Platform, WorkerInit } from "./platform.js";
import { webWorkerSource } from "./worker-source.js";

/** A platform whose wasm builds are fetched from `wasmBase` (a folder URL ending in "/"). */
export function webPlatform(wasmBase: string | URL): Platform {
  let workerUrl: string | undefined;
  return {
    async loadWasm(name: string): Promise<Uint8Array> {
      const url = new URL(name, wasmBase);
      const res = await fetch(url);
      if (!res.ok) throw new Error(`wasm core ${url} could not be fetched: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    hardwareThreads(): number {
      return Math.max(1, browser.navigator?.hardwareConcurrency ?? 1);
    },
    enableRelaxedSimd(relaxedBuild: Uint8Array): boolean {
      // browsers have no engine flags to set: relaxed SIMD runs where it validates
      return wasm.validate(relaxedBuild);
    },
    spawnWorker(data: WorkerInit): HostWorker {
      if (!browser.Worker) throw new Error("this host has no Web Workers");
      workerUrl ??= URL.createObjectURL(new Blob([webWorkerSource()], { type: "text/javascript" }));
      const w = new browser.Worker(workerUrl, { name: "lora-edge kernel" });
      let done = false;
      const ready = new Promise<void>((resolve, reject) => {
        w.addEventListener("message", (ev) => {
          const d = ev.data as { error?: string } | string;
          if (d === "ready") resolve();
          else reject(new Error(`kernel worker failed: ${typeof d === "object" ? d.error : String(d)}`));
        });
        w.addEventListener("error", (ev) => reject(new Error(`kernel worker failed: ${ev.message ?? "error"}`)));
      });
      ready.catch(() => {});
      w.postMessage(data);
      return {
        ready,
        terminate() {
          if (done) return;
          done = true;
          w.terminate();
        },
      };
    },
  };
}
