// LoRA adapters for the engine: reads <tensor>.lora_a / .lora_b pairs from an adapter source into core memory, never merged into the base.
import type { Core, Matrix } from "../../../core/core.js";
import { freeLoraQ8, loraQ8Fits, uploadLoraQ8, type LoraQ8Pair } from "../../../core/lora-q8.js";
import { GgmlType } from "../../../gguf/ggml-types.js";
import { ModelSource } from "./config.js";
import { UnsupportedAdapterError } from "../../../errors.js";
import type { LoraTerm } from "./products.js";

/** An adapter pair's halves in core memory: f32 A (rank x cols) and B (rows x rank), or the compact form alone. */
export type LoraHalves =
  | { a: Matrix; b: Matrix; q8?: undefined }
  /** Compact form (Q8_0 A, int8 B): what decoding and prompts use; the f32 halves are not kept. */
  | { q8: LoraQ8Pair; a?: undefined; b?: undefined };

export type LoraPair = LoraHalves & { rank: number };

/**
 * How adapter halves are kept for products: "f32" (default) repeats llama.cpp's arithmetic; "q8" keeps A as
 * Q8_0 rows on 8-bit x and B as int8 rows, a quarter of the bytes, where the columns are a multiple of 32.
 * On quantized bases the int8 forms move logits by 1e-2 to 3e-2 normwise (the f32 forms: about 1e-7).
 */
export type AdapterPrecision = "f32" | "q8";

/** Whether a pair on base matrix `w` is kept in compact form under `precision`. */
function compactFor(precision: AdapterPrecision, w: Matrix): boolean {
  return precision === "q8" && loraQ8Fits(w.cols);
}

/** An adapter resident in core memory. */
export class EngineAdapter {
  private freed_ = false;
  constructor(
    private readonly core: Core,
    readonly name: string,
    /** adapter.lora.alpha; 0 when absent (then the user scale is used as is). */
    readonly alpha: number,
    /** Pairs by base tensor name. */
    readonly pairs: ReadonlyMap<string, LoraPair>,
    readonly bytes: number,
  ) {}

  get freed(): boolean {
    return this.freed_;
  }

  /** Effective scale of a pair: user scale * alpha / rank (user scale alone without alpha). */
  scaleOf(pair: LoraPair, userScale: number): number {
    return this.alpha ? (userScale * this.alpha) / pair.rank : userScale;
  }

  /** Releases the adapter's memory; the engine must no longer reference it. */
  free(): void {
    if (this.freed_) return;
    this.freed_ = true;
    for (const p of this.pairs.values()) freePair(this.core, p);
  }
}

function freePair(core: Core, p: LoraPair): void {
  if (p.q8) freeLoraQ8(core, p.q8);
  else {
    core.free(p.a);
    core.free(p.b);
  }
}

/** Adapter halves in another type (F16, quantized) are widened to F32 once at load. */
function f32Values(core: Core, typeId: number, bytes: Uint8Array, n: number): Float32Array {
  if (typeId !== GgmlType.F32) return core.dequantize(typeId, bytes, n);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  return new Float32Array(bytes.slice(0, n * 4).buffer);
}

/**
 * Loads an adapter checked against the base's product matrices (`base` by tensor name).
 * Norm entries are skipped as llama.cpp does; adapters on token_embd are refused.
 */
export function loadAdapter(core: Core, src: ModelSource, base: ReadonlyMap<string, Matrix>, architecture: string, precision: AdapterPrecision = "f32"): EngineAdapter {
  const type = src.get("general.type");
  if (type !== undefined && type !== "adapter") throw new UnsupportedAdapterError(src.path, "general.type", `'${String(type)}', expected 'adapter'`);
  const at = src.get("adapter.type");
  if (at !== "lora") throw new UnsupportedAdapterError(src.path, "adapter.type", `'${String(at)}', expected 'lora'`);
  const arch = src.get("general.architecture");
  if (arch !== architecture) throw new UnsupportedAdapterError(src.path, "general.architecture", `'${String(arch)}', the model is '${architecture}'`);
  const alphaRaw = src.get("adapter.lora.alpha");
  const alpha = typeof alphaRaw === "number" ? alphaRaw : 0;
  const names = new Set<string>();
  for (const t of src.tensors) {
    const m = /^(.*)\.lora_[ab]$/.exec(t.name);
    if (!m) throw new UnsupportedAdapterError(src.path, t.name, "not a .lora_a/.lora_b tensor");
    if (m[1].endsWith("_norm.weight")) continue;
    names.add(m[1]);
  }
  const pairs = new Map<string, LoraPair>();
  let bytes = 0;
  try {
    for (const name of names) {
      if (name === "token_embd.weight") throw new UnsupportedAdapterError(src.path, name, "adapters on the token embedding are not supported by this engine");
      const w = base.get(name);
      if (!w) throw new UnsupportedAdapterError(src.path, name, "the model has no such product matrix");
      const ta = src.tensor(name + ".lora_a"), tb = src.tensor(name + ".lora_b");
      if (!ta || !tb) throw new UnsupportedAdapterError(src.path, name, "needs both .lora_a and .lora_b");
      const rank = tb.ne[0];
      if (ta.ne[0] !== w.cols || ta.ne[1] !== rank || tb.ne[1] !== w.rows) {
        throw new UnsupportedAdapterError(src.path, name, `lora_a [${ta.ne.join(", ")}] / lora_b [${tb.ne.join(", ")}] do not fit the base [${w.cols}, ${w.rows}]`);
      }
      const av = f32Values(core, ta.type.id, src.readTensor(ta), rank * w.cols);
      const bv = f32Values(core, tb.type.id, src.readTensor(tb), w.rows * rank);
      const pair: LoraPair = compactFor(precision, w)
        ? { q8: uploadLoraQ8(core, av, bv, w.rows, w.cols, rank), rank }
        : { a: core.uploadF32(av, rank, w.cols), b: core.uploadF32(bv, w.rows, rank), rank };
      pairs.set(name, pair);
      bytes += pair.q8 ? pair.q8.bytes : (rank * w.cols + w.rows * rank) * 4;
    }
  } catch (e) {
    for (const p of pairs.values()) freePair(core, p);
    throw e;
  }
  return new EngineAdapter(core, src.path, alpha, pairs, bytes);
}

/** Adapter terms per base tensor name for an active set of (adapter, user scale). */
export function termsFor(active: readonly { adapter: EngineAdapter; scale: number }[]): Map<string, LoraTerm[]> {
  const out = new Map<string, LoraTerm[]>();
  for (const { adapter, scale } of active) {
    if (adapter.freed) throw new Error(`adapter ${adapter.name} was freed`);
    if (scale === 0) continue;
    for (const [name, pair] of adapter.pairs) {
      let list = out.get(name);
      if (!list) out.set(name, (list = []));
      list.push({ ...pair, scale: adapter.scaleOf(pair, scale) });
    }
  }
  return out;
}
