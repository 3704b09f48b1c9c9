// LoRA adapters in memory (f32 A and B per base tensor) and their GGUF form in llama.cpp's layout: read, scale, write.
import { GgufFile, GgufValueType, openGguf } from "../gguf/reader.js";
import { GgufKVInput, GgufTensorInput, writeGguf } from "../gguf/writer.js";
import type { OutputOptions } from "../output-file.js";
import { adapterMeta } from "../gguf/metadata.js";
import { pairLoraTensors } from "../gguf/lora-pairs.js";
import { GgmlType, GgmlTypeTraits, ggmlTypeById } from "../gguf/ggml-types.js";
import { UnsupportedAdapterError } from "../errors.js";
import { AdapterDataError } from "../errors.js";
import { describeNonFinite, findNonFinite } from "../gguf/finite.js";
import { canCode, decodeToF32, encodeFromF32 } from "./tensor-codec.js";

/**
 * One adapted weight: ΔW = scale · B · A, with A (rank x nIn) and B (nOut x rank) row-major, in the layout of
 * the base weight (ne [nIn, nOut]). token_embd is held the same way; only its file form differs (see below).
 */
export interface LoraPair {
  /** Base tensor name, e.g. "blk.0.attn_q.weight". */
  target: string;
  nIn: number;
  nOut: number;
  rank: number;
  a: Float32Array;
  b: Float32Array;
  /** ggml types the halves had on disk (F32 when made in memory). */
  typeA?: number;
  typeB?: number;
}

export interface LoraAdapter {
  architecture: string;
  /** adapter.lora.alpha; undefined means llama.cpp's scale is the user scale (no alpha / r). */
  alpha?: number;
  pairs: LoraPair[];
  /** Other adapter.* metadata to carry over (task name, prompt prefix, aLoRA tokens). */
  extraKv: GgufKVInput[];
}

/** The scale llama.cpp applies to a pair at user scale 1: alpha / rank, or 1 without alpha. */
export function pairScale(adapter: Pick<LoraAdapter, "alpha">, pair: Pick<LoraPair, "rank">): number {
  return adapter.alpha === undefined ? 1 : Math.fround(adapter.alpha) / pair.rank;
}

const CARRIED = ["adapter.lora.task_name", "adapter.lora.prompt_prefix", "adapter.alora.invocation_tokens"];

/** The token-embedding tensor, whose halves llama.cpp stores flipped (it looks rows up instead of multiplying). */
export const TOKEN_EMBD = "token_embd.weight";

/** Transpose of a row-major rows x cols f32 matrix. */
export function transpose32(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

/** `bytes` when every value is finite, else an AdapterDataError naming the file and the tensor. */
export function finiteBytes(file: string, tensor: string, type: GgmlTypeTraits, bytes: Uint8Array, what = ""): Uint8Array {
  const bad = findNonFinite(type, bytes);
  if (bad) throw new AdapterDataError(file, tensor, `${what}${describeNonFinite(type, bad)}`);
  return bytes;
}

/** Reads a GGUF LoRA adapter into f32 halves; refuses non-adapters, unpaired halves and NaN or Inf values. */
export function readAdapter(path: string): LoraAdapter {
  const f = openGguf(path);
  try {
    return adapterFromGguf(f);
  } finally {
    f.close();
  }
}

export function adapterFromGguf(f: GgufFile): LoraAdapter {
  const meta = adapterMeta(f);
  if (meta.generalType !== "adapter") throw new UnsupportedAdapterError(f.path, "general.type", `not an adapter (general.type is ${meta.generalType ?? "missing"})`);
  if (meta.adapterType !== "lora") throw new UnsupportedAdapterError(f.path, "adapter.type", `adapter.type is ${meta.adapterType ?? "missing"}, only "lora" is supported`);
  if (!meta.architecture) throw new UnsupportedAdapterError(f.path, "general.architecture", "missing");
  const { pairs: halves, unexpected } = pairLoraTensors(f.tensors);
  if (unexpected.length) throw new UnsupportedAdapterError(f.path, unexpected[0].name, "not a .lora_a/.lora_b tensor");
  const pairs: LoraPair[] = [];
  for (const [target, { a, b }] of halves) {
    if (!a || !b) throw new UnsupportedAdapterError(f.path, target, `the pair lacks its ${a ? "lora_b" : "lora_a"} half`);
    for (const t of [a, b]) {
      if (!canCode(t.type)) throw new UnsupportedAdapterError(f.path, t.name, `tensor type ${t.type.name} is not supported (F32, F16, BF16, Q8_0, Q4_0)`);
    }
    const va = decodeToF32(finiteBytes(f.path, a.name, a.type, f.readTensor(a)), a.type, a.nElements);
    const vb = decodeToF32(finiteBytes(f.path, b.name, b.type, f.readTensor(b)), b.type, b.nElements);
    if (target === TOKEN_EMBD) {
      // llama.cpp: lora_a ne [r, n_vocab] and lora_b ne [r, n_embd]; ΔE (n_vocab x n_embd) = lora_a · lora_bᵀ.
      if (a.ne.length !== 2 || b.ne.length !== 2 || a.ne[0] !== b.ne[0]) {
        throw new UnsupportedAdapterError(f.path, target, `lora_a [${a.ne.join(", ")}] and lora_b [${b.ne.join(", ")}] do not form a token-embedding pair`);
      }
      const [rank, nVocab] = a.ne;
      const nEmbd = b.ne[1];
      pairs.push({ target, nIn: nEmbd, nOut: nVocab, rank, a: transpose32(vb, nEmbd, rank), b: va, typeA: a.type.id, typeB: b.type.id });
      continue;
    }
    if (a.ne.length !== 2 || b.ne.length !== 2 || a.ne[1] !== b.ne[0]) {
      throw new UnsupportedAdapterError(f.path, target, `lora_a [${a.ne.join(", ")}] and lora_b [${b.ne.join(", ")}] do not form a pair`);
    }
    const [nIn, rank] = a.ne;
    const nOut = b.ne[1];
    pairs.push({ target, nIn, nOut, rank, a: va, b: vb, typeA: a.type.id, typeB: b.type.id });
  }
  const extraKv: GgufKVInput[] = [];
  for (const k of CARRIED) {
    const e = f.kv.get(k);
    if (e) extraKv.push({ key: e.key, type: e.type, value: e.value });
  }
  return { architecture: meta.architecture, alpha: meta.alpha, pairs, extraKv };
}

/** Chooses each half's output type: the requested one, or F16 where a block type does not divide the row. */
export type TypeChooser = (pair: LoraPair, half: "a" | "b") => number;

export const fixedType = (type: number): TypeChooser => (p, h) => {
  const t = ggmlTypeById(type) as GgmlTypeTraits;
  const ne0 = h === "a" && p.target !== TOKEN_EMBD ? p.nIn : p.rank;
  return ne0 % t.blockSize === 0 ? type : GgmlType.F16;
};

/** Orders pairs as the base model orders its tensors (blk.N then module name), so output is deterministic. */
export function sortPairs(pairs: LoraPair[]): LoraPair[] {
  const key = (n: string) => {
    const m = /^blk\.(\d+)\.(.*)$/.exec(n);
    return m ? [Number(m[1]), m[2]] as const : [Number.MAX_SAFE_INTEGER, n] as const;
  };
  return [...pairs].sort((x, y) => {
    const [lx, nx] = key(x.target);
    const [ly, ny] = key(y.target);
    return lx - ly || (nx < ny ? -1 : nx > ny ? 1 : 0);
  });
}

/** Writes an adapter GGUF atomically in llama.cpp's layout (see writeGguf for `opts`); returns the tensor types used. */
export function writeAdapter(path: string, adapter: LoraAdapter, chooseType: TypeChooser = () => GgmlType.F32, name?: string,
  opts: OutputOptions = {}): { types: Record<string, string> } {
  const kv: GgufKVInput[] = [
    { key: "general.type", type: GgufValueType.STRING, value: "adapter" },
    { key: "general.architecture", type: GgufValueType.STRING, value: adapter.architecture },
  ];
  if (name) kv.push({ key: "general.name", type: GgufValueType.STRING, value: name });
  kv.push({ key: "adapter.type", type: GgufValueType.STRING, value: "lora" });
  if (adapter.alpha !== undefined) kv.push({ key: "adapter.lora.alpha", type: GgufValueType.FLOAT32, value: adapter.alpha });
  kv.push(...adapter.extraKv.filter((e) => !kv.some((k) => k.key === e.key)));
  const tensors: GgufTensorInput[] = [];
  const types: Record<string, string> = {};
  for (const p of sortPairs(adapter.pairs)) {
    const ta = chooseType(p, "a");
    const tb = chooseType(p, "b");
    types[`${p.target}.lora_a`] = ggmlTypeById(ta)!.name;
    types[`${p.target}.lora_b`] = ggmlTypeById(tb)!.name;
    // Every half is checked once encoded: values beyond F16's range (or a Q8_0 block's scale) would become Inf.
    const enc = (name: string, x: Float32Array, type: number) => () =>
      finiteBytes(path, name, ggmlTypeById(type)!, encodeFromF32(x, type), `would be written as ${ggmlTypeById(type)!.name} and then `);
    if (p.target === TOKEN_EMBD) {
      tensors.push({ name: `${p.target}.lora_a`, type: ta, ne: [p.rank, p.nOut], data: enc(`${p.target}.lora_a`, p.b, ta) });
      tensors.push({ name: `${p.target}.lora_b`, type: tb, ne: [p.rank, p.nIn], data: enc(`${p.target}.lora_b`, transpose32(p.a, p.rank, p.nIn), tb) });
      continue;
    }
    tensors.push({ name: `${p.target}.lora_a`, type: ta, ne: [p.nIn, p.rank], data: enc(`${p.target}.lora_a`, p.a, ta) });
    tensors.push({ name: `${p.target}.lora_b`, type: tb, ne: [p.rank, p.nOut], data: enc(`${p.target}.lora_b`, p.b, tb) });
  }
  writeGguf(path, { kv, tensors }, opts);
  return { types };
}
