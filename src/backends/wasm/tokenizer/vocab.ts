// Tokenizer vocabulary built from GGUF `tokenizer.ggml.*` metadata, with the defaults the reference runtime applies.
import { LoraEdgeError } from "../../../errors.js";

import { TokenAttr, TokenType } from "./token-attrs.js";
import type { PreFamily } from "./pretokenize.js";
import { resolveSpecialTokens } from "./special.js";

export { TokenAttr, TokenType } from "./token-attrs.js";

export type VocabKind = "spm" | "bpe";

/** Everything the tokenizers need, independent of where the metadata came from. */
export interface TokenizerVocab {
  /** `tokenizer.ggml.model` as written in the file ("llama" or "gpt2"). */
  readonly model: string;
  readonly kind: VocabKind;
  /** `tokenizer.ggml.pre` ("default" when absent). */
  readonly pre: string;
  /** The splitting rules that pre-tokenizer name selects (BPE only). */
  readonly preFamily: PreFamily;
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  /** Attribute bits per token (see TokenAttr). */
  readonly attrs: Uint16Array;
  readonly tokenToId: ReadonlyMap<string, number>;
  /** BPE merge ranks keyed by `mergeKey(left, right)`; empty for SPM. */
  readonly mergeRanks: ReadonlyMap<string, number>;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eotId: number | null;
  readonly eomId: number | null;
  /** Tokens that end generation. */
  readonly eogIds: ReadonlySet<number>;
  readonly unkId: number | null;
  readonly sepId: number | null;
  readonly padId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** Detokenizer post-processing of spaces before punctuation (BPE pre-tokenizers only). */
  readonly cleanSpaces: boolean;
  /** A whole pre-tokenized word that is itself a token skips the merges (llama3 family). */
  readonly ignoreMerges: boolean;
}

/** Bad or missing tokenizer metadata. */
export class VocabError extends LoraEdgeError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, message: string) {
    super("VOCAB", `${file}: ${field}: ${message}`);
    this.file = file;
    this.field = field;
  }
}

/** Anything with GGUF-style metadata lookup (a parsed GGUF file satisfies it). */
export interface MetadataSource {
  get(key: string): unknown;
}

const K = "tokenizer.ggml.";

/** Settings a BPE pre-tokenizer name implies (only the names this runtime can pre-tokenize). */
interface PreSettings {
  family: PreFamily;
  cleanSpaces: boolean;
  ignoreMerges: boolean;
  addBos?: boolean;
}

const BPE_PRE: Record<string, PreSettings> = {};
function pre(family: PreFamily, names: string[], s: Omit<PreSettings, "family">): void {
  for (const n of names) BPE_PRE[n] = { family, ...s };
}
pre("default", ["default"], { cleanSpaces: true, ignoreMerges: false });
pre("llama3", ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
  { cleanSpaces: true, ignoreMerges: true, addBos: true });
pre("llama3", ["dbrx", "smaug-bpe"], { cleanSpaces: true, ignoreMerges: false });
pre("gpt2", ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
  "modern-bert", "mpt", "olmo", "jais", "exaone4"], { cleanSpaces: true, ignoreMerges: false });
pre("qwen2", ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"], { cleanSpaces: false, ignoreMerges: false });
pre("qwen2", ["stablelm2", "megrez"], { cleanSpaces: true, ignoreMerges: false });
pre("starcoder", ["smollm", "command-r"], { cleanSpaces: false, ignoreMerges: false });
pre("starcoder", ["starcoder", "refact", "codeshell", "exaone", "minerva-7b"], { cleanSpaces: true, ignoreMerges: false });
pre("falcon", ["falcon"], { cleanSpaces: true, ignoreMerges: false });

/** BPE pre-tokenizer names this runtime supports. */
export function supportedBpePreTokenizers(): string[] {
  return Object.keys(BPE_PRE);
}

function asInt(file: string, key: string, v: unknown): number {
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number" && Number.isInteger(v)) return v;
  throw new VocabError(file, key, `expected an integer, got ${typeof v}`);
}

function optInt(src: MetadataSource, file: string, key: string): number | undefined {
  const v = src.get(key);
  return v === undefined ? undefined : asInt(file, key, v);
}

function optBool(src: MetadataSource, file: string, key: string): boolean | undefined {
  const v = src.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw new VocabError(file, key, `expected a boolean, got ${typeof v}`);
  return v;
}

function asArray(file: string, key: string, v: unknown): ArrayLike<unknown> {
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return v as unknown as ArrayLike<unknown>;
  throw new VocabError(file, key, `expected an array, got ${typeof v}`);
}

/**
 * Builds a vocabulary from GGUF metadata. `file` names the source in errors.
 * Special-token ids follow the reference defaults (SPM: bos 1, eos 2, unk 0; GPT-2: bos/eos 11),
 * dropped when out of range; a metadata id out of range keeps the default.
 */
export function vocabFromMetadata(src: MetadataSource, file = "<metadata>"): TokenizerVocab {
  const model = src.get(K + "model");
  if (typeof model !== "string") throw new VocabError(file, K + "model", "missing or not a string");
  let kind: VocabKind;
  if (model === "llama") kind = "spm";
  else if (model === "gpt2") kind = "bpe";
  else throw new VocabError(file, K + "model", `unsupported tokenizer model '${model}' (supported: llama, gpt2)`);

  const rawTokens = src.get(K + "tokens");
  if (rawTokens === undefined) throw new VocabError(file, K + "tokens", "missing");
  const tokArr = asArray(file, K + "tokens", rawTokens);
  const n = tokArr.length;
  const tokens: string[] = new Array(n);
  const tokenToId = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const raw = tokArr[i];
    if (typeof raw !== "string") throw new VocabError(file, `${K}tokens[${i}]`, "not a string");
    const t = raw === "" ? `[EMPTY_${i}]` : raw;
    if (tokenToId.has(t)) throw new VocabError(file, `${K}tokens[${i}]`, `duplicate token ${JSON.stringify(t)}`);
    tokens[i] = t;
    tokenToId.set(t, i);
  }

  const scores = new Float32Array(n);
  const rawScores = src.get(K + "scores");
  if (rawScores !== undefined) {
    const a = asArray(file, K + "scores", rawScores);
    if (a.length < n) throw new VocabError(file, K + "scores", `${a.length} scores for ${n} tokens`);
    for (let i = 0; i < n; i++) {
      const s = a[i];
      if (typeof s !== "number") throw new VocabError(file, `${K}scores[${i}]`, "not a number");
      scores[i] = s;
    }
  }

  const attrs = new Uint16Array(n).fill(TokenAttr.NORMAL);
  const rawTypes = src.get(K + "token_type");
  if (rawTypes !== undefined) {
    const a = asArray(file, K + "token_type", rawTypes);
    if (a.length < n) throw new VocabError(file, K + "token_type", `${a.length} types for ${n} tokens`);
    for (let i = 0; i < n; i++) attrs[i] = attrFromType(asInt(file, `${K}token_type[${i}]`, a[i]));
  }

  let preName = "default";
  let preFamily: PreFamily = "default";
  let cleanSpaces = false;
  let ignoreMerges = false;
  let addBos = false;
  let addSpacePrefix = false;
  const mergeRanks = new Map<string, number>();
  let bosId: number | null;
  let eosId: number | null;
  let unkId: number | null;

  if (kind === "spm") {
    bosId = 1; eosId = 2; unkId = 0;
    addBos = true;
    addSpacePrefix = true;
    const p = src.get(K + "pre");
    if (typeof p === "string") preName = p;
  } else {
    bosId = 11; eosId = 11; unkId = null;
    const p = src.get(K + "pre");
    if (p !== undefined && typeof p !== "string") throw new VocabError(file, K + "pre", "not a string");
    preName = p === undefined ? "default" : p;
    const settings = BPE_PRE[preName];
    if (!settings) {
      throw new VocabError(file, K + "pre",
        `unsupported pre-tokenizer '${preName}' (supported: ${supportedBpePreTokenizers().join(", ")})`);
    }
    preFamily = settings.family;
    cleanSpaces = settings.cleanSpaces;
    ignoreMerges = settings.ignoreMerges;
    addBos = settings.addBos ?? false;
    const rawMerges = src.get(K + "merges");
    if (rawMerges === undefined) throw new VocabError(file, K + "merges", "missing (required for gpt2 tokenizers)");
    const m = asArray(file, K + "merges", rawMerges);
    for (let i = 0; i < m.length; i++) {
      const w = m[i];
      if (typeof w !== "string") throw new VocabError(file, `${K}merges[${i}]`, "not a string");
      // split at the first space after the first character; a merge without one can never apply
      const pos = w.indexOf(" ", 1);
      if (pos < 0) continue;
      const key = mergeKey(w.slice(0, pos), w.slice(pos + 1));
      if (!mergeRanks.has(key)) mergeRanks.set(key, i);
    }
  }

  const specialId = (key: string, dflt: number | null): number | null => {
    let id = dflt !== null && dflt >= n ? null : dflt;
    const v = optInt(src, file, K + key);
    if (v !== undefined && v >= 0 && v < n) id = v;
    return id;
  };
  bosId = specialId("bos_token_id", bosId);
  eosId = specialId("eos_token_id", eosId);
  unkId = specialId("unknown_token_id", unkId);
  const sepId = specialId("seperator_token_id", null);
  const padId = specialId("padding_token_id", null);
  const roles = {
    eot: specialId("eot_token_id", null),
    eom: specialId("eom_token_id", null),
    // the older key names, where present, win over the newer ones
    fimPre: specialId("prefix_token_id", specialId("fim_pre_token_id", null)),
    fimSuf: specialId("suffix_token_id", specialId("fim_suf_token_id", null)),
    fimMid: specialId("middle_token_id", specialId("fim_mid_token_id", null)),
    fimPad: specialId("fim_pad_token_id", null),
    fimRep: specialId("fim_rep_token_id", null),
    fimSep: specialId("fim_sep_token_id", null),
  };
  const eogIds = resolveSpecialTokens(tokens, tokenToId, attrs, roles, eosId);

  addSpacePrefix = optBool(src, file, K + "add_space_prefix") ?? addSpacePrefix;
  addBos = optBool(src, file, K + "add_bos_token") ?? addBos;
  const addEos = optBool(src, file, K + "add_eos_token") ?? false;

  return {
    model, kind, pre: preName, preFamily, tokens, scores, attrs, tokenToId, mergeRanks,
    bosId, eosId, eotId: roles.eot, eomId: roles.eom, unkId, sepId, padId, eogIds,
    addBos, addEos, addSpacePrefix, cleanSpaces, ignoreMerges,
  };
}

/** Unambiguous map key for the merge of `left` and `right`. */
export function mergeKey(left: string, right: string): string {
  return `${left.length}:${left}${right}`;
}

function attrFromType(t: number): number {
  switch (t) {
    case TokenType.UNKNOWN: return TokenAttr.UNKNOWN;
    case TokenType.UNUSED: return TokenAttr.UNUSED;
    case TokenType.NORMAL: return TokenAttr.NORMAL;
    case TokenType.CONTROL: return TokenAttr.CONTROL;
    case TokenType.USER_DEFINED: return TokenAttr.USER_DEFINED;
    case TokenType.BYTE: return TokenAttr.BYTE;
    default: return TokenAttr.UNDEFINED;
  }
}
