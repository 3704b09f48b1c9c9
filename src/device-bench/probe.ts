// Cold-load and memory probe: a fresh node process loads the model and a context with an adapter, logging llama.cpp's buffer sizes.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { parseBufferSizes, type LlamaBufferSizes } from "../devices/llama-log.js";

export interface ProbeOptions {
  modelPath: string;
  adapterPath?: string;
  contextSize: number;
  threads: number;
  gpu: false | "cuda" | "vulkan" | "metal";
}

export interface ProbeResult {
  /** Loading the native binding and backends. */
  initMs: number;
  modelLoadMs: number;
  contextMs: number;
  modelSize: number;
  buffers: LlamaBufferSizes;
  rss: { start: number; afterLoad: number; afterContext: number };
}

// Runs in the child: plain JS so it needs no compiler; argv[2] holds the options and the module URL.
const CHILD = `
const o = JSON.parse(process.argv[2]);
const { getLlama, LlamaLogLevel } = await import(o.moduleUrl);
const logs = [];
const start = process.memoryUsage().rss;
const t0 = performance.now();
const llama = await getLlama({ gpu: o.gpu, build: "never", skipDownload: true, maxThreads: o.threads,
  logLevel: LlamaLogLevel.debug, logger: (_l, m) => { logs.push(m); }, progressLogs: false });
const t1 = performance.now();
const model = await llama.loadModel({ modelPath: o.modelPath });
const t2 = performance.now();
const afterLoad = process.memoryUsage().rss;
const ctx = await model.createContext({ contextSize: o.contextSize, threads: o.threads, sequences: 1,
  ...(o.adapterPath ? { lora: { adapters: [{ filePath: o.adapterPath, scale: 1 }] } } : {}) });
const t3 = performance.now();
const want = o.adapterPath ? [/compute buffer size/, /LoRA buffer size/] : [/compute buffer size/];
for (const end = Date.now() + 10000; Date.now() < end && !want.every((r) => r.test(logs.join("\\n")));) await new Promise((r) => setTimeout(r, 10));
const afterContext = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ initMs: t1 - t0, modelLoadMs: t2 - t1, contextMs: t3 - t2, modelSize: model.size,
  log: logs.join("\\n"), rss: { start, afterLoad, afterContext } }) + "\\n");
process.exit(0);
`;

const execFileP = promisify(execFile);

/** Loads once in a fresh process (a cold load: native binding, backends, model) and measures. */
export async function probeLoad(o: ProbeOptions): Promise<ProbeResult> {
  const moduleUrl = pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href;
  // A script file, not `node -e`: node-llama-cpp re-runs the process's exec arguments to test its binary.
  const script = path.join(os.tmpdir(), `lora-edge-probe-${createHash("sha256").update(CHILD).digest("hex").slice(0, 12)}.mjs`);
  if (!existsSync(script)) {
    const tmp = `${script}.${process.pid}.tmp`;
    writeFileSync(tmp, CHILD);
    renameSync(tmp, script);
  }
  const { stdout } = await execFileP(process.execPath, [script, JSON.stringify({ ...o, moduleUrl })],
    { maxBuffer: 1 << 26, timeout: 300_000 });
  const line = stdout.trim().split("\n").pop() ?? "";
  const raw = JSON.parse(line) as Omit<ProbeResult, "buffers"> & { log: string };
  const { log, ...rest } = raw;
  return { ...rest, buffers: parseBufferSizes(log) };
}
