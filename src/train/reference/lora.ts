// LoRA adapters of the training reference: A (r x in) and B (out x r) per adapted projection, scale alpha / r; seeded init and reading from an adapter GGUF.
import { TrainInputError } from "../../errors.js";
import { mulberry32 } from "../../random.js";
import { LORA_A, LORA_B, pairLoraTensors } from "../../gguf/lora-pairs.js";
import { adapterMeta } from "../../gguf/metadata.js";
import type { GgufFile } from "../../gguf/reader.js";
import type { ReferenceConfig } from "./config.js";
import { tensorValues } from "./weights.js";

/** The seven projections an adapter may target, in the order they are stored and initialized. */
export const TARGETS = ["q", "k", "v", "o", "gate", "up", "down"] as const;
export type Target = (typeof TARGETS)[number];

/** The GGUF tensor name stem of each target. */
export const TARGET_TENSOR: Readonly<Record<Target, string>> = {
  q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output", gate: "ffn_gate", up: "ffn_up", down: "ffn_down",
};

/** The base tensor a target of layer l adapts, e.g. "blk.0.attn_q.weight". */
export function baseTensorName(layer: number, target: Target): string {
  return `blk.${layer}.${TARGET_TENSOR[target]}.weight`;
}

/** [nIn, nOut] of a target's product. */
export function targetDims(c: ReferenceConfig, t: Target): [number, number] {
  const q = c.nHead * c.headDim, kv = c.nHeadKv * c.headDim;
  switch (t) {
    case "q": return [c.nEmbd, q];
    case "k": return [c.nEmbd, kv];
    case "v": return [c.nEmbd, kv];
    case "o": return [q, c.nEmbd];
    case "gate": return [c.nEmbd, c.nFf];
    case "up": return [c.nEmbd, c.nFf];
    case "down": return [c.nFf, c.nEmbd];
  }
}

/** One adapted projection: y = W x + scale B (A x). */
export interface LoraPair {
  readonly rank: number;
  readonly nIn: number;
  readonly nOut: number;
  readonly scale: number;
  /** rank x nIn, row-major (GGUF lora_a, ne [nIn, rank]). */
  readonly a: Float64Array;
  /** nOut x rank, row-major (GGUF lora_b, ne [rank, nOut]). */
  readonly b: Float64Array;
}

export interface LoraAdapter {
  /** Pairs by the base tensor they adapt (see baseTensorName), in layer order, then TARGETS order. */
  readonly pairs: ReadonlyMap<string, LoraPair>;
}

/** Gradients of an adapter's halves, by the same keys. */
export type LoraGradients = Map<string, { readonly a: Float64Array; readonly b: Float64Array }>;

export interface SeededLoraOptions {
  rank: number;
  alpha: number;
  targets?: readonly Target[];
  seed: number;
  /** A is uniform in +-aRange / sqrt(nIn); default 1 (PEFT's default bound for A). */
  aRange?: number;
  /** B is uniform in +-bRange; default 0 (B = 0: training starts from the base model, as PEFT does). */
  bRange?: number;
}

/**
 * An adapter with seeded values. One mulberry32 generator (src/random.ts) seeded once gives, for each layer in
 * order and each target in TARGETS order, first A's values then B's, row-major, each (2u - 1) * range; B's values
 * are drawn even when bRange is 0. scripts/torch-lora-reference.py draws the same numbers the same way.
 */
export function seededLora(c: ReferenceConfig, o: SeededLoraOptions): LoraAdapter {
  if (!Number.isInteger(o.rank) || o.rank < 1) throw new RangeError(`rank must be a positive integer, got ${o.rank}`);
  const rand = mulberry32(o.seed);
  const targets = new Set(o.targets ?? TARGETS);
  const pairs = new Map<string, LoraPair>();
  for (let l = 0; l < c.nLayer; l++) {
    for (const t of TARGETS) {
      if (!targets.has(t)) continue;
      const [nIn, nOut] = targetDims(c, t);
      const ra = (o.aRange ?? 1) / Math.sqrt(nIn), rb = o.bRange ?? 0;
      const a = new Float64Array(o.rank * nIn), b = new Float64Array(nOut * o.rank);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rand() - 1) * ra;
      for (let i = 0; i < b.length; i++) b[i] = (2 * rand() - 1) * rb;
      pairs.set(baseTensorName(l, t), { rank: o.rank, nIn, nOut, scale: o.alpha / o.rank, a, b });
    }
  }
  return { pairs };
}

/**
 * An adapter from a LoRA GGUF in llama.cpp's layout, as llama.cpp applies it at user scale `userScale`:
 * scale = userScale * alpha / r per pair (userScale alone when the file has no alpha).
 */
export function loraFromGguf(file: GgufFile, c: ReferenceConfig, userScale = 1): LoraAdapter {
  const alpha = adapterMeta(file).alpha;
  const names = new Map<string, [number, Target]>();
  for (let l = 0; l < c.nLayer; l++) for (const t of TARGETS) names.set(baseTensorName(l, t), [l, t]);
  const { pairs: halves, unexpected } = pairLoraTensors(file.tensors);
  if (unexpected.length) throw new TrainInputError(file.path, unexpected[0].name, "neither a .lora_a nor a .lora_b tensor");
  const pairs = new Map<string, LoraPair>();
  for (const [base, h] of halves) {
    const target = names.get(base);
    if (!target) throw new TrainInputError(file.path, base, "not a projection the trainer adapts (q, k, v, o, gate, up, down of a layer)");
    if (!h.a || !h.b) throw new TrainInputError(file.path, base + (h.a ? LORA_B : LORA_A), "missing half of a LoRA pair");
    const [nIn, nOut] = targetDims(c, target[1]);
    const rank = h.b.ne[0];
    const a = tensorValues(file, h.a.name, [nIn, rank]);
    const b = tensorValues(file, h.b.name, [rank, nOut]);
    pairs.set(base, { rank, nIn, nOut, scale: alpha === undefined ? userScale : (userScale * alpha) / rank, a, b });
  }
  return { pairs };
}

/** Zero gradients shaped like the adapter's halves. */
export function zeroGradients(lora: LoraAdapter): LoraGradients {
  const g: LoraGradients = new Map();
  for (const [k, p] of lora.pairs) g.set(k, { a: new Float64Array(p.a.length), b: new Float64Array(p.b.length) });
  return g;
}

/** The adapter's halves as one flat list (A then B of each pair, in pair order): what an optimizer updates. */
export function loraParameters(lora: LoraAdapter): Float64Array[] {
  return [...lora.pairs.values()].flatMap((p) => [p.a, p.b]);
}

/** Gradients as one flat list in loraParameters' order. */
export function gradientList(lora: LoraAdapter, g: LoraGradients): Float64Array[] {
  return [...lora.pairs.keys()].flatMap((k) => {
    const x = g.get(k);
    if (!x) throw new Error(`no gradient for ${k}`);
    return [x.a, x.b];
  });
}
