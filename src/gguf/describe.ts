// A plain, JSON-ready description of a GGUF file: header, summarised metadata, tensors grouped by layer.
import { GgufArray, GgufFile, GgufValue, GgufValueType } from "./reader.js";
import { fileKind, modelHparams } from "./metadata.js";
import { AdapterSummary, adapterSummary } from "./adapter.js";

export interface GgufDescription {
  file: string;
  version: number;
  kind: "model" | "adapter" | string;
  architecture: string | null;
  tensorCount: number;
  alignment: number;
  fileSize: number;
  hparams: {
    n_embd: number; n_layer: number; n_head: number; n_head_kv: number; n_ff: number; n_vocab: number;
    rope_dims: number; rope_base: number; context_length: number;
  } | null;
  adapter: AdapterSummary | null;
  metadata: { key: string; type: string; value: string }[];
  groups: { group: string; bytes: number; tensors: { name: string; type: string; ne: number[]; bytes: number; offset: number }[] }[];
}

const ARRAY_PREVIEW = 8;

function typeName(type: GgufValueType, v: GgufValue): string {
  const name = GgufValueType[type].toLowerCase();
  return v instanceof GgufArray ? `${GgufValueType[v.itemType].toLowerCase()}[${v.items.length}]` : name;
}

/** A value as one short line: long arrays show their first items and their length; f32 shown at f32 precision. */
function preview(v: GgufValue, type?: GgufValueType): string {
  if (v instanceof GgufArray) {
    const head = v.items.slice(0, ARRAY_PREVIEW).map((x) => preview(x, v.itemType)).join(", ");
    return `[${head}${v.items.length > ARRAY_PREVIEW ? `, ... (${v.items.length} items)` : ""}]`;
  }
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (type === GgufValueType.FLOAT32 && typeof v === "number") return String(Number(v.toPrecision(7)));
  return String(v);
}

/** Describes a parsed GGUF file; model hyper-parameters only for models, the summary only for adapters. */
export function describeGguf(g: GgufFile): GgufDescription {
  const kind = fileKind(g);
  let hparams: GgufDescription["hparams"] = null;
  if (kind === "model") {
    const h = modelHparams(g);
    hparams = {
      n_embd: h.nEmbd, n_layer: h.nLayer, n_head: h.nHead, n_head_kv: h.nHeadKv, n_ff: h.nFf, n_vocab: h.nVocab,
      rope_dims: h.ropeDims, rope_base: h.ropeBase, context_length: h.contextLength,
    };
  }
  const groups = new Map<string, GgufDescription["groups"][number]>();
  for (const t of g.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    const key = m ? `layer ${m[1]}` : "global";
    const grp = groups.get(key) ?? { group: key, bytes: 0, tensors: [] };
    grp.bytes += t.byteSize;
    grp.tensors.push({ name: t.name, type: t.type.name, ne: [...t.ne], bytes: t.byteSize, offset: t.offset });
    groups.set(key, grp);
  }
  const arch = g.get("general.architecture");
  return {
    file: g.path,
    version: g.version,
    kind,
    architecture: typeof arch === "string" ? arch : null,
    tensorCount: g.tensors.length,
    alignment: g.alignment,
    fileSize: g.fileSize,
    hparams,
    adapter: kind === "adapter" ? adapterSummary(g) : null,
    metadata: [...g.kv.values()].map((e) => ({ key: e.key, type: typeName(e.type, e.value), value: preview(e.value, e.type) })),
    groups: [...groups.values()],
  };
}
