// Test helper: a small generated grouped-query model whose weights are Q4_0, Q4_K or Q6_K (or a mix), quantized by the type table's ggml reference quantizers.
import { KERNELS } from "../../src/core/kernels.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { writeGguf, type GgufTensorInput } from "../../src/gguf/writer.js";
import { Rng } from "../../src/random.js";
import { synthModelSpec, type ModelShape } from "../../src/tools/synth.js";

/** 8 query heads over 2 KV heads of width 32; every row a multiple of 256 so K-quants fit. */
export function quantTestShape(architecture: "llama" | "qwen2"): ModelShape {
  const qwen = architecture === "qwen2";
  return {
    id: `train-quant-${architecture}`, title: `training test shape (${architecture})`, architecture,
    nEmbd: 256, nLayer: 2, nHead: 8, nHeadKv: 2, nFf: 256, nVocab: 320, contextLength: 256,
    ropeBase: qwen ? 1000000 : 10000, rmsEps: 1e-6, tiedEmbeddings: qwen, qkvBias: qwen,
  };
}

/** How the weights are typed: one quantized type for every weight, or a mix of all three. */
export type QuantMix = "Q4_0" | "Q4_K" | "Q6_K" | "mixed";

/** The type of each weight under a mix: "mixed" puts all three types among the projections, Q4_0 embeddings, a Q6_K output. */
function weightType(name: string, mix: QuantMix): number | undefined {
  if (!/\.weight$/.test(name) || /_norm\.weight$/.test(name)) return undefined;
  if (mix !== "mixed") return GgmlType[mix];
  if (/attn_(q|k)\.weight|ffn_gate\.weight/.test(name)) return GgmlType.Q4_K;
  if (/attn_v\.weight|ffn_down\.weight|^output\.weight/.test(name)) return GgmlType.Q6_K;
  return GgmlType.Q4_0;
}

/** Writes the model: uniform random weights of deviation 1/sqrt(n_in), quantized by ggml's reference rounding. Returns each weight's type. */
export function writeQuantModel(path: string, architecture: "llama" | "qwen2", mix: QuantMix, seed = 5): Map<string, number> {
  const spec = synthModelSpec({ shape: quantTestShape(architecture), type: "F32", seed });
  const types = new Map<string, number>();
  const tensors: GgufTensorInput[] = spec.tensors.map((t, i) => {
    const type = weightType(t.name, mix);
    if (type === undefined) return t;
    types.set(t.name, type);
    const quantize = KERNELS.get(type)!.ref.quantize!;
    const n = t.ne.reduce((x, y) => x * y, 1), a = Math.sqrt(3 / t.ne[0]);
    return { name: t.name, type, ne: t.ne, data: () => {
      const rng = new Rng(seed * 7919 + i);
      return quantize(Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * a));
    } };
  });
  writeGguf(path, { kv: spec.kv, tensors });
  return types;
}
