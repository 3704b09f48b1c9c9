// Merges LoRA adapters into a base model GGUF (dequantize, W += s·B·A, requantize), streaming one tensor at a time.
import { openGguf, GgufTensorInfo, GgufValueType } from "../gguf/reader.js";
import { GgufKVInput, GgufTensorInput, kvInputsFrom, writeGgufAsync } from "../gguf/writer.js";
import { checkOutput } from "../output-file.js";
import { adapterCheckError, checkAdapter, scaleProblem } from "../gguf/adapter.js";
import { describeNonFinite, findNonFinite } from "../gguf/finite.js";
import { ALORA_INVOCATION_KEY } from "../gguf/alora.js";
import { adapterMeta } from "../gguf/metadata.js";
import { GgmlType, ggmlTypeById } from "../gguf/ggml-types.js";
import { AdapterDataError, InvalidArgumentError } from "../errors.js";
import { UnsupportedAdapterError } from "../errors.js";
import { LoraAdapter, pairScale, readAdapter } from "./lora.js";
import { availableParallelism } from "node:os";
import { parallelTensorMath, TensorMath, typeName } from "./tensor-math.js";
import { progressBar } from "./progress.js";

export type MergeType = "keep" | "f32" | "f16" | "q8_0" | "q4_0";
const TYPE_IDS: Record<Exclude<MergeType, "keep">, number> = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0 };
/** llama.cpp's general.file_type for a model mostly of one type. */
const FILE_TYPES: Record<Exclude<MergeType, "keep">, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

export interface MergeAdapterInput {
  path: string;
  scale: number;
}

export interface MergeResult {
  output: string;
  type: MergeType;
  engine: "wasm" | "ts";
  /** Why the TypeScript kernels ran instead of the wasm core, when they did. */
  fallbackReason?: string;
  tensors: number;
  /** Tensors that received at least one adapter delta. */
  merged: number;
  /** Tensors whose bytes were re-encoded (merged or converted). */
  reencoded: number;
  /** Threads the kernels ran on (1 without a worker pool). */
  threads: number;
  /** Largest f32 working buffer, bytes (the memory bound of the streaming merge). */
  peakTensorBytes: number;
  seconds: number;
}

/** The output type of one tensor: 2-D weights whose rows are whole blocks take the requested type. */
function outputType(t: GgufTensorInfo, type: MergeType): number {
  if (type === "keep") return t.type.id;
  const want = ggmlTypeById(TYPE_IDS[type])!;
  if (t.ne.length < 2 || !t.name.endsWith(".weight") || t.name.endsWith("_norm.weight")) return t.type.id;
  if (t.ne[0] % want.blockSize !== 0) return t.type.id;
  // As llama.cpp's Q4_0 models do, the output projection keeps 8 bits (it dominates the logits' error).
  if (type === "q4_0" && t.name === "output.weight") return GgmlType.Q8_0;
  return want.id;
}

/**
 * Writes base + Σ scale_i · alpha_i/r · B_i A_i. Everything is checked before the output is created: the output
 * (never an input; an existing one only with `force`), the adapters against the base (as llama.cpp's loader
 * would), and every tensor to re-encode against the kernels. The write yields between tensors, so a signal
 * removes the temp file at once.
 */
export async function mergeAdapters(basePath: string, adapters: readonly MergeAdapterInput[], output: string, type: MergeType = "keep",
  opts: { progress?: boolean; engine?: "auto" | "wasm" | "ts"; force?: boolean; threads?: number } = {}): Promise<MergeResult> {
  const t0 = performance.now();
  const out = { overwrite: opts.force ?? false, inputs: [basePath, ...adapters.map((a) => a.path)] };
  checkOutput(output, out);
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const parallel = await parallelTensorMath(opts.engine ?? "auto", threads);
  const math: TensorMath = parallel.math;
  let base: ReturnType<typeof openGguf>;
  try {
    base = openGguf(basePath);
  } catch (e) {
    parallel.dispose();
    throw e;
  }
  try {
    const loaded: { adapter: LoraAdapter; scale: number; path: string }[] = [];
    for (const a of adapters) {
      const bad = scaleProblem(a.scale);
      if (bad) throw new InvalidArgumentError(`${a.path}: bad scale: ${bad}`);
    }
    for (const a of adapters) {
      const f = openGguf(a.path);
      try {
        if (adapterMeta(f).aloraInvocationTokens) {
          throw new UnsupportedAdapterError(a.path, ALORA_INVOCATION_KEY, "an aLoRA adapter cannot be merged: it acts only from its " +
            "invocation sequence on, and a merge bakes its delta into the base weights, where it would act on every token (a merge cannot keep activation)");
        }
        const refused = adapterCheckError(checkAdapter(base, f), a.path, basePath);
        if (refused) throw refused;
      } finally {
        f.close();
      }
      loaded.push({ adapter: readAdapter(a.path), scale: a.scale, path: a.path });
    }
    const deltas = new Map<string, { b: Float32Array; a: Float32Array; rank: number; s: number }[]>();
    for (const { adapter, scale } of loaded) {
      for (const p of adapter.pairs) {
        const list = deltas.get(p.target) ?? [];
        list.push({ b: p.b, a: p.a, rank: p.rank, s: scale * pairScale(adapter, p) });
        deltas.set(p.target, list);
      }
    }
    const plan = base.tensors.map((t) => {
      const out = outputType(t, type);
      const ds = deltas.get(t.name) ?? [];
      const reencode = ds.length > 0 || out !== t.type.id;
      if (reencode) {
        if (!math.canDecode(t.type.id)) throw new UnsupportedAdapterError(basePath, t.name, `cannot dequantize ${t.type.name}`);
        if (!math.canEncode(out)) {
          throw new UnsupportedAdapterError(basePath, t.name, `cannot re-encode ${typeName(out)} (the kernels quantize F32, F16, BF16, Q4_0, Q4_1, Q8_0): use --type q8_0, q4_0 or f16`);
        }
      }
      return { t, out, ds, reencode };
    });
    const kv: GgufKVInput[] = kvInputsFrom(base);
    if (type !== "keep") {
      const i = kv.findIndex((e) => e.key === "general.file_type");
      const entry = { key: "general.file_type", type: GgufValueType.UINT32, value: FILE_TYPES[type] };
      if (i >= 0) kv[i] = entry;
      else kv.push(entry);
    }
    let peak = 0;
    const bar = progressBar("merge", plan.length, opts.progress ?? false);
    const tensors: GgufTensorInput[] = plan.map(({ t, out, ds, reencode }) => ({
      name: t.name, type: out, ne: t.ne,
      data: () => {
        bar.tick(t.name);
        const bytes = base.readTensor(t);
        if (!reencode) return bytes;
        peak = Math.max(peak, t.nElements * 4);
        const [cols, rows] = [t.ne[0], t.nElements / t.ne[0]];
        const merged = math.mergeTensor(t.type.id, bytes, rows, cols, ds.map((d) => ({ b: d.b, a: d.a, rank: d.rank, s: d.s })), out);
        const traits = ggmlTypeById(out)!;
        const nonFinite = findNonFinite(traits, merged);
        if (nonFinite) {
          throw new AdapterDataError(output, t.name, `the merged weight ${describeNonFinite(traits, nonFinite)}: ` +
            `the adapters' deltas overflow ${traits.name} (check their values and scales); nothing was written`);
        }
        return merged;
      },
    }));
    try {
      await writeGgufAsync(output, { kv, tensors, alignment: base.alignment }, out);
    } finally {
      bar.stop();
    }
    return {
      output, type, engine: math.engine, threads: parallel.threads, fallbackReason: math.fallbackReason, tensors: plan.length,
      merged: plan.filter((p) => p.ds.length > 0).length, reencoded: plan.filter((p) => p.reencode).length,
      peakTensorBytes: peak, seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    base.close();
    parallel.dispose();
  }
}
