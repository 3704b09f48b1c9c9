// The wasm backend's host on Node: the Node platform, absolute paths, process memory, setImmediate between tokens.
import path from "node:path";
import { nodePlatform } from "../../core/platform-node.js";
import type { WasmHost } from "./host.js";

export const wasmHost: WasmHost = {
  platform: () => nodePlatform,
  resolvePath: (p) => path.resolve(p),
  residentBytes: () => process.memoryUsage().rss,
  yieldToEventLoop: () => new Promise<void>((resolve) => setImmediate(resolve)),
};
