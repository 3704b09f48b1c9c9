// The Runtime API in TypeScript: `await using` disposes the runtime at the end of the scope.
// Needs TypeScript >= 5.2 with "target": "ES2022" and "lib": ["ES2022", "ESNext.Disposable"] (this project's
// tsconfig.json); the compiled JavaScript runs on Node 20 or newer, as an ES module.
import { Runtime, demoAdapterPaths, type GenerationResult } from "lora-edge";

const demo = demoAdapterPaths();
await using rt = await Runtime.open({ threads: 1, contextSize: 512 });
await rt.adapters.load("a", demo.a);
await rt.adapters.load("b", demo.b, { scale: 0.5 });

const s = rt.session({ adapters: ["a", "b"] }); // names alone: each at its load scale
const g = s.generate("Once upon a time", { maxTokens: 32, stop: ["\n"] });
for await (const piece of g) process.stdout.write(piece);
const r: GenerationResult = await g.result;
console.log(`\n[${r.generatedTokens} tokens with ${JSON.stringify(r.adapters)}]`);
