// Minimal typed view of the browser APIs the web host uses (the project's TypeScript lib set has no DOM declarations).

/** A Web Worker, as far as the host uses it. */
export interface BrowserWorker {
  postMessage(message: unknown, transfer?: unknown[]): void;
  terminate(): void;
  addEventListener(type: "message" | "error" | "messageerror", listener: (ev: { data?: unknown; message?: string }) => void): void;
}

interface BrowserGlobals {
  Worker?: new (url: string | URL, options?: { type?: "classic" | "module"; name?: string }) => BrowserWorker;
  navigator?: { hardwareConcurrency?: number };
  crossOriginIsolated?: boolean;
  SharedArrayBuffer?: unknown;
  FileReaderSync?: new () => { readAsArrayBuffer(blob: Blob): ArrayBuffer };
  performance?: { memory?: { usedJSHeapSize: number } };
}

/** The host's globals, typed for the browser APIs (each may be missing outside a browser). */
export const browser: BrowserGlobals = globalThis as unknown as BrowserGlobals;

/** True where a shared wasm memory can be handed to workers: cross-origin isolated pages (and Node). */
export function sharedMemoryAllowed(): boolean {
  return typeof browser.SharedArrayBuffer === "function" && browser.crossOriginIsolated !== false;
}
