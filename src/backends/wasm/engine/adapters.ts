// LoRA adapters for the engine: <tensor>.lora_a / .lora_b pairs from an adapter source into core memory (never merged into the base), and the terms of an active set per layer.
import type { Core } from "../../../core/core.js";
import type { Matrix } from "../../../core/types.js";
import type { AdapterTerm, LoraHalves } from "../../../core/products.js";
import { freeLoraQ8, loraQ8Fits, uploadLoraQ8 } from "../../../core/lora-q8.js";
import { loraRank, pairLoraTensors } from "../../../gguf/lora-pairs.js";
import { ModelSource } from "./config.js";
import { UnsupportedAdapterError } from "../../../errors.js";
import type { ModelWeights } from "./weights.js";

export type { LoraHalves };

/** An adapter pair's halves in core memory (f32, or the compact form alone) and its rank. */
export type LoraPair = LoraHalves & { rank: number };

/** One adapter term on a product: y += scale * B (A x). */
export type LoraTerm = AdapterTerm;

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

let nextAdapterId = 1;

/** An adapter resident in core memory. */
export class EngineAdapter {
  private freed_ = false;
  /** Distinct per adapter loaded in this process (groups rows of a batch by adapter). */
  readonly id = nextAdapterId++;
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
  const { pairs: halves, unexpected } = pairLoraTensors(src.tensors);
  if (unexpected.length) throw new UnsupportedAdapterError(src.path, unexpected[0].name, "not a .lora_a/.lora_b tensor");
  const pairs = new Map<string, LoraPair>();
  let bytes = 0;
  try {
    for (const [name, { a: ta, b: tb }] of halves) {
      if (name === "token_embd.weight") throw new UnsupportedAdapterError(src.path, name, "adapters on the token embedding are not supported by this engine");
      const w = base.get(name);
      if (!w) throw new UnsupportedAdapterError(src.path, name, "the model has no such product matrix");
      if (!ta || !tb) throw new UnsupportedAdapterError(src.path, name, "needs both .lora_a and .lora_b");
      const rank = loraRank(tb);
      if (ta.ne[0] !== w.cols || ta.ne[1] !== rank || tb.ne[1] !== w.rows) {
        throw new UnsupportedAdapterError(src.path, name, `lora_a [${ta.ne.join(", ")}] / lora_b [${tb.ne.join(", ")}] do not fit the base [${w.cols}, ${w.rows}]`);
      }
      // halves of any type (F32, F16, quantized) as f32 values, once at load
      const av = core.dequantize(ta.type.id, src.readTensor(ta), rank * w.cols);
      const bv = core.dequantize(tb.type.id, src.readTensor(tb), w.rows * rank);
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
function termsByName(active: readonly { adapter: EngineAdapter; scale: number }[]): Map<string, LoraTerm[]> {
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

const NO_TERMS: readonly LoraTerm[] = [];

/** Adapter terms of an active set, per layer and projection, in the set's order. */
export interface ModelTerms {
  layers: { q: readonly LoraTerm[]; k: readonly LoraTerm[]; v: readonly LoraTerm[]; o: readonly LoraTerm[]; gate: readonly LoraTerm[]; up: readonly LoraTerm[]; down: readonly LoraTerm[] }[];
  output: readonly LoraTerm[];
}

/** The terms of an active set of (adapter, user scale) for a model's layers; scale 0 drops an adapter. */
export function modelTerms(weights: ModelWeights, active: readonly { adapter: EngineAdapter; scale: number }[]): ModelTerms {
  const byName = termsByName(active);
  const get = (name: string) => byName.get(name) ?? NO_TERMS;
  const layers = weights.layers.map((_, l) => {
    const p = `blk.${l}.`;
    return {
      q: get(p + "attn_q.weight"), k: get(p + "attn_k.weight"), v: get(p + "attn_v.weight"), o: get(p + "attn_output.weight"),
      gate: get(p + "ffn_gate.weight"), up: get(p + "ffn_up.weight"), down: get(p + "ffn_down.weight"),
    };
  });
  return { layers, output: get("output.weight") };
}
