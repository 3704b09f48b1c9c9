// Checks a LoRA adapter GGUF against its base model's tensor table, as llama.cpp's loader would, and reports every problem.
import { GgufFile, GgufTensorInfo } from "./reader.js";
import { adapterMeta, fileKind } from "./metadata.js";
import { LORA_A, LORA_B, loraRank, pairLoraTensors, type LoraHalfPair } from "./lora-pairs.js";
import { describeNonFinite, findNonFinite } from "./finite.js";
import { ALORA_INVOCATION_KEY, invocationTokensProblem, vocabularySize } from "./alora.js";
import { AdapterDataError, AdapterMismatchError, LoraEdgeError } from "../errors.js";

export interface AdapterProblem {
  /** The tensor (or metadata key) concerned. */
  tensor: string;
  /** What the base model requires, e.g. "[64, 4]"; empty when not about a shape. */
  expected: string;
  /** What the adapter has. */
  actual: string;
  message: string;
  /** "data": the tensor's values (NaN or Inf); otherwise a problem of the metadata or tensor table. */
  kind?: "data";
}

export interface AdapterSummary {
  alpha: number | undefined;
  /** Distinct ranks, ascending. */
  ranks: number[];
  /** Module names targeted, e.g. "attn_q", "ffn_up" (layer numbers removed). */
  targets: string[];
  /** Layer indices touched, ascending. */
  layers: number[];
  /** Number of (lora_a, lora_b) pairs. */
  pairs: number;
  /** Bytes of adapter tensor data. */
  bytes: number;
  /** aLoRA: the invocation token ids (adapter.alora.invocation_tokens); null for a plain LoRA adapter. */
  aloraInvocationTokens: number[] | null;
}

export interface AdapterCheck {
  ok: boolean;
  problems: AdapterProblem[];
  summary: AdapterSummary;
}

/**
 * The largest user scale, in absolute value, that lora-edge accepts for an adapter (runtime sets, merge, mix).
 * Useful scales are near 1 (alpha / r is applied on top); far beyond this the deltas swamp the base weights
 * and the output is noise (a scale of 1e30 gave nothing but <unk>).
 */
export const MAX_ADAPTER_SCALE = 100;

/** Why `scale` cannot be an adapter scale (not a finite number, or beyond MAX_ADAPTER_SCALE), else undefined. */
export function scaleProblem(scale: unknown): string | undefined {
  if (typeof scale !== "number" || !Number.isFinite(scale)) return `${String(scale)} is not a finite number`;
  if (Math.abs(scale) > MAX_ADAPTER_SCALE) return `${scale} is beyond the bound of ${MAX_ADAPTER_SCALE} (a scale is from -${MAX_ADAPTER_SCALE} to ${MAX_ADAPTER_SCALE})`;
  return undefined;
}

const shape = (ne: readonly number[]) => `[${ne.join(", ")}]`;
/** Token ids as a short list: the first 8, then how many in all. */
const idList = (ids: readonly number[]) => `[${ids.slice(0, 8).join(", ")}${ids.length > 8 ? `, ... (${ids.length} ids)` : ""}]`;

type Pair = LoraHalfPair<GgufTensorInfo>;

/** Groups an adapter's tensors into lora_a/lora_b pairs by base tensor name; reports other suffixes. */
function pairTensors(adapter: GgufFile, problems: AdapterProblem[]): Map<string, Pair> {
  const { pairs, unexpected } = pairLoraTensors(adapter.tensors);
  for (const t of unexpected) {
    problems.push({ tensor: t.name, expected: "", actual: "", message: `unexpected tensor name: adapter tensors must end in ${LORA_A} or ${LORA_B}` });
  }
  return pairs;
}

/** Checks one pair against its base tensor, adding what is wrong to `problems`. */
function checkPair(name: string, p: Pair, base: GgufFile, problems: AdapterProblem[]): void {
  if (!p.a || !p.b) {
    const missing = p.a ? LORA_B : LORA_A;
    problems.push({ tensor: name + missing, expected: "present", actual: "missing", message: `the pair for ${name} lacks its ${missing} half` });
    return;
  }
  const w = base.tensor(name);
  if (!w) {
    problems.push({ tensor: name, expected: "a base tensor", actual: "none", message: `the base model has no tensor ${name} (adapter made for another model?)` });
    return;
  }
  const { a, b } = p;
  if (a.ne.length !== 2 || b.ne.length !== 2 || w.ne.length < 2) {
    problems.push({ tensor: name, expected: "2-D lora_a and lora_b", actual: `${shape(a.ne)} and ${shape(b.ne)}`, message: `${name}: adapter halves must be matrices` });
    return;
  }
  const [nIn, nOut] = [w.ne[0], w.ne[1]];
  const tokenEmbd = name.endsWith("token_embd.weight");
  // token_embd is the special case (llama.cpp looks rows up, so A and B are flipped): A ne [r, n_vocab], B ne [r, n_embd].
  const rank = loraRank(b);
  const expA = tokenEmbd ? [rank, nOut] : [nIn, rank];
  const expB = tokenEmbd ? [rank, nIn] : [rank, nOut];
  for (const [t, exp] of [[a, expA], [b, expB]] as const) {
    if (t.ne[0] !== exp[0] || t.ne[1] !== exp[1]) {
      problems.push({ tensor: t.name, expected: shape(exp), actual: shape(t.ne), message: `${t.name} has shape ${shape(t.ne)}, but base tensor ${name} ${shape(w.ne)} needs ${shape(exp)}` });
    }
  }
  if (rank <= 0) {
    problems.push({ tensor: name, expected: "rank >= 1", actual: String(rank), message: `${name}: rank is ${rank}` });
  }
}

/** Adds a problem when an adapter tensor's data holds NaN or Inf (data llama.cpp would load and compute with). */
function checkData(adapter: GgufFile, t: GgufTensorInfo, problems: AdapterProblem[]): void {
  const bad = findNonFinite(t.type, adapter.readTensor(t));
  if (!bad) return;
  problems.push({ tensor: t.name, expected: "finite values", actual: `${bad.count} NaN/Inf`, message: describeNonFinite(t.type, bad), kind: "data" });
}

/**
 * Checks `adapter` against `base`: metadata, pairing, base tensors and shapes, and (unless `data: false`) that
 * every lora_a/lora_b value is finite; every problem is returned.
 */
export function checkAdapter(base: GgufFile, adapter: GgufFile, options: { data?: boolean } = {}): AdapterCheck {
  const problems: AdapterProblem[] = [];
  const meta = adapterMeta(adapter);
  const baseArch = base.get("general.architecture");
  if (fileKind(base) !== "model") {
    problems.push({ tensor: "general.type", expected: "model", actual: fileKind(base), message: `${base.path} is not a model file` });
  }
  if (meta.generalType !== "adapter") {
    problems.push({ tensor: "general.type", expected: "adapter", actual: meta.generalType ?? "(missing)", message: `${adapter.path} is not an adapter (general.type is ${meta.generalType ?? "missing"})` });
  }
  if (meta.adapterType !== "lora") {
    problems.push({ tensor: "adapter.type", expected: "lora", actual: meta.adapterType ?? "(missing)", message: `adapter.type must be "lora"` });
  }
  if (meta.architecture !== baseArch) {
    problems.push({ tensor: "general.architecture", expected: String(baseArch), actual: meta.architecture ?? "(missing)", message: `the adapter is for architecture ${meta.architecture ?? "(missing)"}, the base is ${String(baseArch)}` });
  }
  if (meta.aloraInvocationTokens) {
    const nVocab = vocabularySize(base);
    const bad = invocationTokensProblem(meta.aloraInvocationTokens, nVocab);
    if (bad) {
      problems.push({
        tensor: ALORA_INVOCATION_KEY, expected: nVocab === undefined ? "token ids" : `token ids below ${nVocab}`,
        actual: idList(meta.aloraInvocationTokens), message: `the invocation sequence ${bad}`,
      });
    }
  }

  const pairs = pairTensors(adapter, problems);
  for (const [name, p] of pairs) checkPair(name, p, base, problems);
  if (options.data !== false) {
    for (const p of pairs.values()) for (const t of [p.a, p.b]) if (t) checkData(adapter, t, problems);
  }
  if (pairs.size === 0) {
    problems.push({ tensor: "(tensors)", expected: "at least one lora_a/lora_b pair", actual: "none", message: "the adapter has no LoRA tensors" });
  }
  return { ok: problems.length === 0, problems, summary: summarize(adapter, pairs) };
}

function summarize(adapter: GgufFile, pairs: Map<string, Pair>): AdapterSummary {
  const ranks = new Set<number>();
  const targets = new Set<string>();
  const layers = new Set<number>();
  let bytes = 0;
  for (const [name, p] of pairs) {
    bytes += (p.a?.byteSize ?? 0) + (p.b?.byteSize ?? 0);
    if (p.b && p.b.ne.length === 2) ranks.add(loraRank(p.b));
    const m = /^blk\.(\d+)\.(.+?)(?:\.weight)?$/.exec(name);
    if (m) { layers.add(Number(m[1])); targets.add(m[2]); }
    else targets.add(name.replace(/\.weight$/, ""));
  }
  const meta = adapterMeta(adapter);
  return {
    alpha: meta.alpha,
    ranks: [...ranks].sort((x, y) => x - y),
    targets: [...targets].sort(),
    layers: [...layers].sort((x, y) => x - y),
    pairs: pairs.size,
    bytes,
    aloraInvocationTokens: meta.aloraInvocationTokens ?? null,
  };
}

/**
 * The error for a failed check, or undefined when it passed: AdapterMismatchError for metadata and tensor-table
 * problems, else AdapterDataError naming the first tensor whose data is not finite.
 */
export function adapterCheckError(check: AdapterCheck, file: string, base: string): LoraEdgeError | undefined {
  if (check.ok) return undefined;
  const table = check.problems.filter((p) => p.kind !== "data");
  if (table.length) return new AdapterMismatchError(file, base, table);
  const d = check.problems[0];
  return new AdapterDataError(file, d.tensor, d.message);
}

/** What an adapter file holds (ranks, alpha, targets, layers, bytes), without a base to check against. */
export function adapterSummary(adapter: GgufFile): AdapterSummary {
  return summarize(adapter, pairTensors(adapter, []));
}
