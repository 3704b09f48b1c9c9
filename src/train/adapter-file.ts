// Files of a training run: the adapter GGUF in llama.cpp's layout (F32 or F16 halves), and checkpoints (A, B, Adam moments, step, settings) that resume a run bit for bit.
import { TrainInputError } from "../errors.js";
import { GgmlType } from "../gguf/ggml-types.js";
import { GgufValueType, openGguf, type GgufFile } from "../gguf/reader.js";
import { writeGguf, type GgufKVInput, type GgufTensorInput, type GgufWriteInput } from "../gguf/writer.js";
import { KERNELS } from "../core/kernels.js";
import type { TrainPair } from "./engine/adapter.js";

const bytesOf = (x: Float32Array) => new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));

/** Values of one pair: A (rank x nIn) and B (nOut x rank). */
export interface PairValues {
  readonly pair: Pick<TrainPair, "key" | "rank" | "nIn" | "nOut">;
  readonly a: Float32Array;
  readonly b: Float32Array;
}

function adapterKv(architecture: string, alpha: number, name?: string): GgufKVInput[] {
  const kv: GgufKVInput[] = [
    { key: "general.type", type: GgufValueType.STRING, value: "adapter" },
    { key: "general.architecture", type: GgufValueType.STRING, value: architecture },
  ];
  if (name) kv.push({ key: "general.name", type: GgufValueType.STRING, value: name });
  kv.push({ key: "adapter.type", type: GgufValueType.STRING, value: "lora" }, { key: "adapter.lora.alpha", type: GgufValueType.FLOAT32, value: alpha });
  return kv;
}

/** The adapter as GGUF content in llama.cpp's layout: `<base tensor>.lora_a` ne [nIn, rank] and `.lora_b` ne [rank, nOut], F32 or F16. */
export function trainedAdapterGguf(architecture: string, alpha: number, pairs: readonly PairValues[], type: "f32" | "f16" = "f32", name?: string): GgufWriteInput {
  const id = type === "f16" ? GgmlType.F16 : GgmlType.F32;
  const encode = (x: Float32Array) => (type === "f16" ? KERNELS.get(GgmlType.F16)!.ref.quantize!(x) : bytesOf(x));
  const tensors: GgufTensorInput[] = pairs.flatMap((p) => [
    { name: `${p.pair.key}.lora_a`, type: id, ne: [p.pair.nIn, p.pair.rank], data: () => encode(p.a) },
    { name: `${p.pair.key}.lora_b`, type: id, ne: [p.pair.rank, p.pair.nOut], data: () => encode(p.b) },
  ]);
  return { kv: adapterKv(architecture, alpha, name), tensors };
}

/** Writes the adapter atomically (see trainedAdapterGguf). */
export function writeTrainedAdapter(path: string, architecture: string, alpha: number, pairs: readonly PairValues[], type: "f32" | "f16" = "f32", name?: string): void {
  writeGguf(path, trainedAdapterGguf(architecture, alpha, pairs, type, name));
}

/** What a checkpoint holds besides the tensors. */
export interface CheckpointMeta {
  /** Steps taken. */
  readonly step: number;
  /** The run's settings (JSON), checked on resume. */
  readonly settings: string;
}

/** Writes a checkpoint atomically: the adapter's tensors, then each half's Adam moments (.adam_m, .adam_v), all F32. */
export function writeCheckpoint(path: string, architecture: string, alpha: number, pairs: readonly PairValues[], m: readonly Float32Array[], v: readonly Float32Array[], meta: CheckpointMeta): void {
  const kv = adapterKv(architecture, alpha, "training checkpoint");
  kv.push(
    { key: "training.step", type: GgufValueType.UINT32, value: meta.step },
    { key: "training.settings", type: GgufValueType.STRING, value: meta.settings },
  );
  const tensors: GgufTensorInput[] = [];
  pairs.forEach((p, i) => {
    const halves: [string, Float32Array, readonly number[]][] = [["lora_a", p.a, [p.pair.nIn, p.pair.rank]], ["lora_b", p.b, [p.pair.rank, p.pair.nOut]]];
    halves.forEach(([h, x, ne], k) => {
      tensors.push({ name: `${p.pair.key}.${h}`, type: GgmlType.F32, ne, data: bytesOf(x) });
      tensors.push({ name: `${p.pair.key}.${h}.adam_m`, type: GgmlType.F32, ne, data: bytesOf(m[2 * i + k]) });
      tensors.push({ name: `${p.pair.key}.${h}.adam_v`, type: GgmlType.F32, ne, data: bytesOf(v[2 * i + k]) });
    });
  });
  writeGguf(path, { kv, tensors });
}

export interface Checkpoint extends CheckpointMeta {
  /** A then B of each pair, then the moments in the same order. */
  readonly params: Float32Array[];
  readonly m: Float32Array[];
  readonly v: Float32Array[];
}

function f32Tensor(file: GgufFile, name: string, n: number): Float32Array {
  const t = file.tensor(name);
  if (!t) throw new TrainInputError(file.path, name, "tensor missing from the checkpoint");
  if (t.type.id !== GgmlType.F32 || t.nElements !== n) throw new TrainInputError(file.path, name, `expected ${n} F32 values, found ${t.nElements} ${t.type.name}`, t.offset);
  const b = file.readTensor(t);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Reads a checkpoint written for these pairs (in this order). */
export function readCheckpoint(path: string, pairs: readonly Pick<TrainPair, "key" | "rank" | "nIn" | "nOut">[]): Checkpoint {
  const file = openGguf(path);
  const step = file.get("training.step"), settings = file.get("training.settings");
  if (typeof step !== "number" || typeof settings !== "string") throw new TrainInputError(path, "training.step", "not a training checkpoint (no training.step / training.settings)");
  const params: Float32Array[] = [], m: Float32Array[] = [], v: Float32Array[] = [];
  for (const p of pairs) {
    for (const [h, n] of [["lora_a", p.rank * p.nIn], ["lora_b", p.nOut * p.rank]] as const) {
      params.push(f32Tensor(file, `${p.key}.${h}`, n));
      m.push(f32Tensor(file, `${p.key}.${h}.adam_m`, n));
      v.push(f32Tensor(file, `${p.key}.${h}.adam_v`, n));
    }
  }
  const expected = pairs.length * 6;
  if (file.tensors.length !== expected) throw new TrainInputError(path, "tensors", `${file.tensors.length} tensors, this run's adapter needs ${expected}`);
  return { step, settings, params, m, v };
}
