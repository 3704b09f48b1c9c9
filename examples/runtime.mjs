// The Runtime API in plain JavaScript: Node 20 or newer, as an ES module (lora-edge is ESM-only).
import { Runtime, demoAdapterPaths } from "lora-edge";

const demo = demoAdapterPaths(); // two small adapters shipped with the package, made for the embedded model

const rt = await Runtime.open({
  // model: "base.Q4_0.gguf", // omitted: the embedded gguf/stories260K.gguf
  backend: "auto", //           "native" (llama.cpp), "wasm" (lora-edge's own engine); "auto": native, else wasm
  gpu: "auto", //               Metal, CUDA or Vulkan where present, else the CPU; false forces the CPU
  threads: 1, //                at most the usable cores (see rt.notices); default: measured at open
  contextSize: 512, //          per session; default: min(2048, the model's training context)
  onProgress: (p) => {}, //     model loading, 0..1
});
try {
  await rt.adapters.load("a", demo.a, { scale: 1 }); // checked against the base, then loaded once
  await rt.adapters.load("b", demo.b);

  const s = rt.session({ adapters: { a: 1 } }); // its own context (own KV cache)
  const signal = AbortSignal.timeout(10_000); // stops the generation when it fires
  const g = s.generate("Once upon a time", { maxTokens: 32, temperature: 0, seed: 0, stop: ["\n"], signal });
  for await (const piece of g) process.stdout.write(piece);
  const r = await g.result; // { text, tokens, promptTokens, generatedTokens, finishReason, adapters, timings }
  console.log(`\n[${r.generatedTokens} tokens, ${r.finishReason}]`);

  await s.setAdapters({ a: 0.7, b: 0.3 }); // live swap / rescale / mix: no reload
  console.log((await s.complete("Once upon a time", { maxTokens: 16 })).text);
  await rt.adapters.unload("a"); // removed from every session first, then freed
  console.log(rt.stats().swaps); // also load times, prefill/decode tok/s with and without adapters, RSS, VRAM
} finally {
  await rt.dispose();
}
