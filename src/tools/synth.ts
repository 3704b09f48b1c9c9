// Generated models and LoRA adapters of real shapes (random weights, valid tokenizer) for benchmarks and tests.

import { writeGguf, writeGgufAsync, type GgufKVInput, type GgufTensorInput } from "../gguf/writer.js";
import { GgufValueType } from "../gguf/reader.js";
import { GgmlType } from "../gguf/ggml-types.js";
import { shapeById, projectionDims, PROJECTIONS, type ModelShape, type ProjectionName } from "./synth/shapes.js";
import { generateVocab } from "./synth/vocab.js";
import { Rng } from "../random.js";
import { randomF16, randomF32, randomQ4_0, randomQ8_0 } from "./synth/random.js";

export { SHAPES, shapeById, PROJECTIONS, type ModelShape, type ProjectionName } from "./synth/shapes.js";

export type SynthWeightType = "F32" | "F16" | "Q8_0" | "Q4_0";

/** llama.cpp's general.file_type for each weight type. */
const FILE_TYPE: Record<SynthWeightType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };
const TYPE_ID: Record<SynthWeightType, number> = { F32: GgmlType.F32, F16: GgmlType.F16, Q4_0: GgmlType.Q4_0, Q8_0: GgmlType.Q8_0 };

export interface SynthModelOptions {
  /** A preset id (see SHAPES) or a full shape. */
  shape: string | ModelShape;
  type: SynthWeightType;
  /** Reduce the vocabulary (keeps the other dimensions). */
  vocab?: number;
  /** Override the layer count. */
  layers?: number;
  seed?: number;
  name?: string;
  /**
   * Quantizer for Q4_0 / Q8_0 (e.g. the wasm core's `core.quantize`): random F32 rows are quantized with it.
   * Without one, valid random blocks are written directly (weight values do not change speed).
   */
  quantize?: Quantizer;
}

/** Quantizes F32 values to a ggml type's blocks. */
export type Quantizer = (typeId: number, values: Float32Array) => Uint8Array;

export interface SynthAdapterOptions {
  shape: string | ModelShape;
  rank: number;
  /** Projections to adapt; default all seven. */
  modules?: ProjectionName[];
  /** Default: rank (scale 1). */
  alpha?: number;
  type?: "F32" | "F16";
  layers?: number;
  seed?: number;
  taskName?: string;
}

export interface SynthResult {
  path: string;
  tensors: number;
  /** Bytes of tensor data. */
  dataBytes: number;
  parameters: number;
  shape: ModelShape;
}

function resolveShape(shape: string | ModelShape, vocab?: number, layers?: number): ModelShape {
  const s = { ...(typeof shape === "string" ? shapeById(shape) : shape) };
  if (vocab !== undefined) s.nVocab = vocab;
  if (layers !== undefined) s.nLayer = layers;
  if (s.nEmbd % s.nHead !== 0) throw new RangeError(`n_embd ${s.nEmbd} is not a multiple of n_head ${s.nHead}`);
  if (s.nHead % s.nHeadKv !== 0) throw new RangeError(`n_head ${s.nHead} is not a multiple of n_head_kv ${s.nHeadKv}`);
  return s;
}

/** Values quantized per chunk, so a large tensor never needs its F32 copy in memory at once. */
const QUANT_CHUNK = 1 << 22;

/** Weight generator for one tensor: deviation 0.5/sqrt(n_in) keeps activations near unit variance. */
function weightData(type: SynthWeightType, ne: number[], seed: number, quantize?: Quantizer): () => Uint8Array {
  return () => {
    const rng = new Rng(seed);
    const n = ne.reduce((a, b) => a * b, 1);
    const std = 0.5 / Math.sqrt(ne[0]);
    if (quantize && (type === "Q4_0" || type === "Q8_0")) {
      const typeId = TYPE_ID[type];
      const blockBytes = type === "Q4_0" ? 18 : 34;
      const out = new Uint8Array((n / 32) * blockBytes);
      const rowsPerChunk = Math.max(1, Math.floor(QUANT_CHUNK / ne[0]));
      const chunk = new Float32Array(rowsPerChunk * ne[0]);
      const a = std * Math.sqrt(3); // uniform in [-a, a] has deviation std
      for (let start = 0, at = 0; start < n; start += chunk.length) {
        const len = Math.min(chunk.length, n - start);
        const x = len === chunk.length ? chunk : chunk.subarray(0, len);
        for (let i = 0; i < len; i++) x[i] = (rng.next() * 2 - 1) * a;
        const q = quantize(typeId, x);
        if (q.byteLength !== (len / 32) * blockBytes) throw new Error(`quantizer returned ${q.byteLength} bytes for ${len} ${type} values`);
        out.set(q, at);
        at += q.byteLength;
      }
      return out;
    }
    switch (type) {
      case "F32": return randomF32(rng, n, std);
      case "F16": return randomF16(rng, n, std);
      case "Q8_0": return randomQ8_0(rng, n, std);
      case "Q4_0": return randomQ4_0(rng, n, std);
    }
  };
}

const u32 = (key: string, value: number): GgufKVInput => ({ key, type: GgufValueType.UINT32, value });
const f32 = (key: string, value: number): GgufKVInput => ({ key, type: GgufValueType.FLOAT32, value });
const str = (key: string, value: string): GgufKVInput => ({ key, type: GgufValueType.STRING, value });

/** The metadata and tensor list of a generated model (nothing generated until written). */
export function synthModelSpec(opts: SynthModelOptions): { kv: GgufKVInput[]; tensors: GgufTensorInput[]; shape: ModelShape } {
  const s = resolveShape(opts.shape, opts.vocab, opts.layers);
  const a = s.architecture;
  const hd = s.nEmbd / s.nHead;
  const vocab = generateVocab(s.nVocab);
  const kv: GgufKVInput[] = [
    str("general.architecture", a),
    str("general.type", "model"),
    str("general.name", opts.name ?? `synthetic ${s.title} ${opts.type}`),
    u32("general.file_type", FILE_TYPE[opts.type]),
    u32("general.quantization_version", 2),
    u32(`${a}.context_length`, s.contextLength),
    u32(`${a}.embedding_length`, s.nEmbd),
    u32(`${a}.feed_forward_length`, s.nFf),
    u32(`${a}.block_count`, s.nLayer),
    u32(`${a}.attention.head_count`, s.nHead),
    u32(`${a}.attention.head_count_kv`, s.nHeadKv),
    u32(`${a}.rope.dimension_count`, hd),
    f32(`${a}.rope.freq_base`, s.ropeBase),
    f32(`${a}.attention.layer_norm_rms_epsilon`, s.rmsEps),
    u32(`${a}.vocab_size`, s.nVocab),
    str("tokenizer.ggml.model", "llama"),
    { key: "tokenizer.ggml.tokens", type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: vocab.tokens },
    { key: "tokenizer.ggml.scores", type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: vocab.scores },
    { key: "tokenizer.ggml.token_type", type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: vocab.types },
    u32("tokenizer.ggml.bos_token_id", vocab.bos),
    u32("tokenizer.ggml.eos_token_id", vocab.eos),
    u32("tokenizer.ggml.unknown_token_id", vocab.unk),
    { key: "tokenizer.ggml.add_bos_token", type: GgufValueType.BOOL, value: true },
    { key: "tokenizer.ggml.add_eos_token", type: GgufValueType.BOOL, value: false },
  ];
  const seed0 = opts.seed ?? 1;
  let seq = 0;
  const tensors: GgufTensorInput[] = [];
  const weight = (name: string, ne: number[]) => {
    tensors.push({ name, type: TYPE_ID[opts.type], ne, data: weightData(opts.type, ne, seed0 * 1000003 + seq++, opts.quantize) });
  };
  const norm = (name: string, n: number) => {
    tensors.push({ name, type: GgmlType.F32, ne: [n], data: () => randomF32(new Rng(0), n, 0, 1) });
  };
  const bias = (name: string, n: number) => {
    const sd = seed0 * 1000003 + seq++;
    tensors.push({ name, type: GgmlType.F32, ne: [n], data: () => randomF32(new Rng(sd), n, 0.02) });
  };
  weight("token_embd.weight", [s.nEmbd, s.nVocab]);
  for (let i = 0; i < s.nLayer; i++) {
    const p = `blk.${i}.`;
    norm(p + "attn_norm.weight", s.nEmbd);
    for (const proj of ["q", "k", "v", "o"] as const) {
      weight(`${p}${PROJECTIONS[proj]}.weight`, projectionDims(s, proj));
      if (s.qkvBias && proj !== "o") bias(`${p}${PROJECTIONS[proj]}.bias`, projectionDims(s, proj)[1]);
    }
    norm(p + "ffn_norm.weight", s.nEmbd);
    for (const proj of ["gate", "up", "down"] as const) weight(`${p}${PROJECTIONS[proj]}.weight`, projectionDims(s, proj));
  }
  norm("output_norm.weight", s.nEmbd);
  if (!s.tiedEmbeddings) weight("output.weight", [s.nEmbd, s.nVocab]);
  void hd;
  return { kv, tensors, shape: s };
}

function summarize(path: string, tensors: GgufTensorInput[], shape: ModelShape, bytesOf: (t: GgufTensorInput) => number): SynthResult {
  let dataBytes = 0;
  let parameters = 0;
  for (const t of tensors) {
    dataBytes += bytesOf(t);
    parameters += t.ne.reduce((a, b) => a * b, 1);
  }
  return { path, tensors: tensors.length, dataBytes, parameters, shape };
}

function tensorBytes(t: GgufTensorInput): number {
  const n = t.ne.reduce((a, b) => a * b, 1);
  const id = typeof t.type === "number" ? t.type : t.type.id;
  switch (id) {
    case GgmlType.F32: return n * 4;
    case GgmlType.F16: return n * 2;
    case GgmlType.Q8_0: return (n / 32) * 34;
    case GgmlType.Q4_0: return (n / 32) * 18;
    default: throw new Error(`unexpected type ${id}`);
  }
}

/** Writes a generated model (atomically); tensor data is produced one tensor at a time. */
export function synthModel(path: string, opts: SynthModelOptions): SynthResult {
  const { kv, tensors, shape } = synthModelSpec(opts);
  writeGguf(path, { kv, tensors });
  return summarize(path, tensors, shape, tensorBytes);
}

/** The metadata and tensors of a random LoRA adapter for a shape. */
export function synthAdapterSpec(opts: SynthAdapterOptions): { kv: GgufKVInput[]; tensors: GgufTensorInput[]; shape: ModelShape } {
  const s = resolveShape(opts.shape, undefined, opts.layers);
  const r = opts.rank;
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`rank must be a positive integer, got ${r}`);
  const modules = opts.modules ?? (Object.keys(PROJECTIONS) as ProjectionName[]);
  for (const m of modules) if (!(m in PROJECTIONS)) throw new RangeError(`unknown module "${m}"; known: ${Object.keys(PROJECTIONS).join(", ")}`);
  const type = opts.type ?? "F32";
  const kv: GgufKVInput[] = [
    str("general.architecture", s.architecture),
    str("general.type", "adapter"),
    str("general.name", `synthetic rank-${r} LoRA for ${s.title}`),
    str("adapter.type", "lora"),
    f32("adapter.lora.alpha", opts.alpha ?? r),
  ];
  if (opts.taskName) kv.push(str("adapter.lora.task_name", opts.taskName));
  const seed0 = opts.seed ?? 7;
  let seq = 0;
  const tensors: GgufTensorInput[] = [];
  const mat = (name: string, ne: number[], std: number) => {
    const sd = seed0 * 7919 + seq++;
    const n = ne[0] * ne[1];
    tensors.push({ name, type: type === "F32" ? GgmlType.F32 : GgmlType.F16, ne,
      data: () => (type === "F32" ? randomF32(new Rng(sd), n, std) : randomF16(new Rng(sd), n, std)) });
  };
  for (let i = 0; i < s.nLayer; i++) {
    for (const m of modules) {
      const [nIn, nOut] = projectionDims(s, m);
      const base = `blk.${i}.${PROJECTIONS[m]}.weight`;
      mat(`${base}.lora_a`, [nIn, r], 1 / Math.sqrt(nIn));
      mat(`${base}.lora_b`, [r, nOut], 0.05 / Math.sqrt(r));
    }
  }
  return { kv, tensors, shape: s };
}

/** Writes a random LoRA adapter in llama.cpp's layout (atomically). */
export function synthAdapter(path: string, opts: SynthAdapterOptions): SynthResult {
  const { kv, tensors, shape } = synthAdapterSpec(opts);
  writeGguf(path, { kv, tensors });
  return summarize(path, tensors, shape, tensorBytes);
}

/**
 * synthModel for the CLI: an existing output is refused unless `force`, and the write returns to the event
 * loop after each tensor (SIGINT and SIGTERM remove the temp file at once).
 */
export async function synthModelAsync(path: string, opts: SynthModelOptions, out: { force?: boolean } = {}): Promise<SynthResult> {
  const { kv, tensors, shape } = synthModelSpec(opts);
  await writeGgufAsync(path, { kv, tensors }, { overwrite: out.force ?? false });
  return summarize(path, tensors, shape, tensorBytes);
}

/** synthAdapter for the CLI, as synthModelAsync. */
export async function synthAdapterAsync(path: string, opts: SynthAdapterOptions, out: { force?: boolean } = {}): Promise<SynthResult> {
  const { kv, tensors, shape } = synthAdapterSpec(opts);
  await writeGgufAsync(path, { kv, tensors }, { overwrite: out.force ?? false });
  return summarize(path, tensors, shape, tensorBytes);
}
