// The wasm backend's host in a browser (the web bundle puts it in place of host-node.ts): wasm fetched next to the bundle.
import { browser } from "../../core/browser-api.js";
import { webPlatform } from "../../core/platform-web.js";
import type { Platform } from "../../core/platform.js";
import type { WasmHost } from "./host.js";

let platform: Platform | undefined;
let wasmBase: string | URL = new URL("./", import.meta.url);

/** Where the wasm builds are fetched from (default: the folder of the bundle); set before the first model opens. */
export function setWasmBase(url: string | URL): void {
  wasmBase = url;
  platform = undefined;
}

/** One channel for every yield: a message posted to ourselves runs after the tasks already queued, unthrottled. */
const waiting: (() => void)[] = [];
let channel: InstanceType<typeof MessageChannel> | undefined;
function yieldByMessage(): Promise<void> {
  if (!channel) {
    channel = new MessageChannel();
    // a browser's MessagePort has onmessage (Node's typings only know its EventEmitter side)
    (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => waiting.shift()?.();
  }
  const ch = channel;
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    ch.port2.postMessage(null);
  });
}

export const wasmHost: WasmHost = {
  platform: () => (platform ??= webPlatform(wasmBase)),
  resolvePath: (p) => p,
  residentBytes: (wasmBytes) => wasmBytes + (browser.performance?.memory?.usedJSHeapSize ?? 0),
  yieldToEventLoop: yieldByMessage,
};
