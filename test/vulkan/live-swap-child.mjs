// Child process of the Vulkan tests: node-llama-cpp's own live adapter change (_setLoras) on a fully offloaded
// context, with generation between changes. Exits 0 when it survives; llama.cpp's memory corruption aborts it.
import { getLlama } from "node-llama-cpp";

const [modelPath, a, b, count] = process.argv.slice(2);
const llama = await getLlama({ gpu: "vulkan", build: "never", skipDownload: true, maxThreads: 1, logLevel: "error", progressLogs: false });
if ((await llama.getGpuDeviceNames()).length === 0) throw new Error("no Vulkan device in the child process");
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 128, threads: 1 });
const sequence = context.getSequence();
const sets = [[{ filePath: a, scale: 1 }], [{ filePath: a, scale: 0.5 }], [{ filePath: b, scale: 1 }], [], [{ filePath: a, scale: 0.5 }, { filePath: b, scale: 0.5 }]];
const tokens = [1, ...model.tokenize("Once upon a time")];
for (let i = 0; i < Number(count); i++) {
  await context._setLoras(sets[i % sets.length]);
  await sequence.clearHistory();
  let n = 0;
  for await (const _ of sequence.evaluate(tokens, { temperature: 0 })) if (++n >= 2) break;
}
await context.dispose();
await model.dispose();
