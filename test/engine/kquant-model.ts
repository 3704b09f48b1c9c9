// Test helper: a small generated grouped-query qwen2 model (q/k/v biases, neox RoPE, tied output) with Q4_K and Q6_K weights.
import { synthModelSpec, type ModelShape } from "../../src/tools/synth.js";
import { Rng } from "../../src/random.js";
import { GgmlType } from "../../src/gguf/ggml-types.js";
import { writeGguf, type GgufTensorInput } from "../../src/gguf/writer.js";
import { f32ToF16 } from "../../src/core/reference/half.js";

export const KQUANT_SHAPE: ModelShape = {
  id: "kquant-test", title: "K-quant test shape", architecture: "qwen2", nEmbd: 256, nLayer: 2, nHead: 4, nHeadKv: 2,
  nFf: 512, nVocab: 512, contextLength: 1024, ropeBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, qkvBias: true,
};

/** Random valid Q4_K blocks for n values whose rows are `cols` long: roughly uniform in +-a, mean near zero. */
export function randomQ4K(rng: Rng, n: number, a: number): Uint8Array {
  const out = new Uint8Array((n / 256) * 144);
  const dv = new DataView(out.buffer);
  for (let o = 0; o < out.length; o += 144) {
    const sc: number[] = [], m: number[] = [];
    for (let j = 0; j < 8; j++) {
      sc.push(4 + Math.floor(rng.next() * 5));
      m.push(Math.round(sc[j] * 7.5));
    }
    const d = a / (8 * 7.5);
    dv.setUint16(o, f32ToF16(d), true);
    dv.setUint16(o + 2, f32ToF16(d), true);
    for (let j = 0; j < 4; j++) {
      out[o + 4 + j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
      out[o + 8 + j] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
      out[o + 12 + j] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
    }
    for (let j = 0; j < 128; j++) out[o + 16 + j] = Math.floor(rng.next() * 256);
  }
  return out;
}

/** Random valid Q6_K blocks: values d * scale * (q - 32), roughly uniform in +-a. */
export function randomQ6K(rng: Rng, n: number, a: number): Uint8Array {
  const out = new Uint8Array((n / 256) * 210);
  const dv = new DataView(out.buffer);
  for (let o = 0; o < out.length; o += 210) {
    for (let j = 0; j < 192; j++) out[o + j] = Math.floor(rng.next() * 256);
    for (let j = 0; j < 16; j++) dv.setInt8(o + 192 + j, (rng.next() < 0.5 ? -1 : 1) * (8 + Math.floor(rng.next() * 9)));
    dv.setUint16(o + 208, f32ToF16(a / (12 * 32)), true);
  }
  return out;
}

/** Which K-quant each weight gets (a Q4_K_M-like mix): Q6_K for attn_v, ffn_down and the tied embedding. */
function kType(name: string): number | undefined {
  if (/attn_v\.weight|ffn_down\.weight|token_embd\.weight/.test(name)) return GgmlType.Q6_K;
  if (/attn_(q|k|output)\.weight|ffn_(gate|up)\.weight/.test(name)) return GgmlType.Q4_K;
  return undefined;
}

/** Writes the model; returns the tensor types used. */
export function writeKQuantModel(path: string, seed = 3): Map<string, number> {
  const spec = synthModelSpec({ shape: KQUANT_SHAPE, type: "F32", seed });
  const types = new Map<string, number>();
  const tensors: GgufTensorInput[] = spec.tensors.map((t, i) => {
    const k = kType(t.name);
    if (k === undefined) return t;
    types.set(t.name, k);
    const n = t.ne.reduce((x, y) => x * y, 1);
    const a = (0.5 / Math.sqrt(t.ne[0])) * Math.sqrt(3);
    const rng = new Rng(seed * 7919 + i);
    return { name: t.name, type: k, ne: t.ne, data: () => (k === GgmlType.Q4_K ? randomQ4K(rng, n, a) : randomQ6K(rng, n, a)) };
  });
  const kv = spec.kv.map((e) => (e.key === "general.file_type" ? { ...e, value: 15 } : e));
  writeGguf(path, { kv, tensors });
  return types;
}
