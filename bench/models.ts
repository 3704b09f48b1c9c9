// Generated models the benchmarks share: the 100M-parameter llama shape, written once per folder.
import fs from "node:fs";
import path from "node:path";
import { openGguf } from "../src/gguf/reader.js";
import { synthModel, type ModelShape } from "../src/tools/synth.js";

/** About 97M parameters: 12 layers of n_embd 768 / n_ff 2048 (85M) and an 8000-token vocabulary (12M). */
export const SHAPE_100M: ModelShape = {
  id: "bench-100m",
  title: "generated 100M llama",
  architecture: "llama",
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  nHeadKv: 12,
  nFf: 2048,
  nVocab: 8000,
  contextLength: 2048,
  ropeBase: 10000,
  rmsEps: 1e-5,
  tiedEmbeddings: false,
  qkvBias: false,
};

/** Parameters of a model file: the elements of its tensors. */
export function parameterCount(file: string): number {
  const f = openGguf(file);
  try {
    return f.tensors.reduce((n, t) => n + t.nElements, 0);
  } finally {
    f.close();
  }
}

/** The 100M model in Q4_0 (seed 1) in `dir`, generated unless it is already there. */
export function generated100M(dir: string, log: (s: string) => void = () => {}): string {
  const file = path.join(dir, "bench-100m-Q4_0.gguf");
  if (!fs.existsSync(file)) {
    const t = performance.now();
    const r = synthModel(file, { shape: SHAPE_100M, type: "Q4_0", seed: 1 });
    log(`generated ${file}: ${(r.parameters / 1e6).toFixed(1)}M parameters, ${(r.dataBytes / 2 ** 20).toFixed(0)} MiB in ${(performance.now() - t).toFixed(0)} ms`);
  }
  return file;
}
