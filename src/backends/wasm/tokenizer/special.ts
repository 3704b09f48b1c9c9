// Special tokens recognised by their text: control-type overrides and the end-of-generation set.

import { TokenAttr } from "./token-attrs.js";

/** Token texts that identify a role when the metadata does not name its id. */
const ROLE_TEXTS: Record<string, readonly string[]> = {
  eot: ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>"],
  eom: ["<|eom_id|>"],
  fimPre: ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>", "<PRE>", "\u2581<PRE>",
    "<|code_prefix|>", "<|prefix|>"],
  fimSuf: ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>", "<SUF>", "\u2581<SUF>",
    "<|code_suffix|>", "<|suffix|>"],
  fimMid: ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>", "<MID>", "\u2581<MID>",
    "<|code_middle|>", "<|middle|>"],
  fimPad: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  fimRep: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  fimSep: ["<|file_sep|>"],
};

/** Texts of tokens that end generation (and are always control tokens). */
const EOG_TEXTS = new Set<string>([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
  "<eos>", "<turn|>", "<|tool_response>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~[",
]);

/** Channel markers that are always rendered, whatever their declared type. */
const ALWAYS_RENDERED = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

export type SpecialRole = keyof typeof ROLE_TEXTS;

export interface SpecialIds {
  eot: number | null;
  eom: number | null;
  fimPre: number | null;
  fimSuf: number | null;
  fimMid: number | null;
  fimPad: number | null;
  fimRep: number | null;
  fimSep: number | null;
}

/**
 * Completes `ids` (ids the metadata did not give are looked up by text; among several candidates the lowest id
 * wins), forces the control type on role and end-of-generation tokens in `attrs`, and returns the
 * end-of-generation set (EOS, EOT, EOM, FIM pad/repo/file-separator, and tokens with a known ending text).
 */
export function resolveSpecialTokens(tokens: readonly string[], tokenToId: ReadonlyMap<string, number>,
  attrs: Uint16Array, ids: SpecialIds, eosId: number | null): Set<number> {
  for (const role of Object.keys(ROLE_TEXTS) as SpecialRole[]) {
    if (ids[role as keyof SpecialIds] !== null) continue;
    let best = -1;
    for (const t of ROLE_TEXTS[role]) {
      const id = tokenToId.get(t);
      if (id !== undefined && (best < 0 || id < best)) best = id;
    }
    if (best >= 0) {
      ids[role as keyof SpecialIds] = best;
      attrs[best] |= TokenAttr.CONTROL;
    }
  }

  for (let i = 0; i < tokens.length; i++) {
    if ((attrs[i] & TokenAttr.CONTROL) && !(attrs[i] & TokenAttr.UNUSED) && tokens[i].includes("unused")) {
      attrs[i] |= TokenAttr.UNUSED;
    }
  }

  const eog = new Set<number>();
  for (const id of [ids.fimPad, ids.fimRep, ids.fimSep]) if (id !== null) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = tokenToId.get(t);
    if (id === undefined) continue;
    eog.add(id);
    attrs[id] |= TokenAttr.CONTROL;
  }
  for (const t of ALWAYS_RENDERED) {
    const id = tokenToId.get(t);
    if (id !== undefined) attrs[id] = TokenAttr.USER_DEFINED;
  }
  for (const id of [eosId, ids.eot, ids.eom]) if (id !== null) eog.add(id);

  const textOf = (id: number): string => tokens[id];
  const eogTexts = new Set([...eog].map(textOf));
  // "<|end|>" does not end generation where "<|return|>"+"<|call|>" or "<|calls|>"+"<|flush|>" exist
  const end = tokenToId.get("<|end|>");
  if (end !== undefined && eog.has(end)) {
    const hasCall = eogTexts.has("<|call|>") || eogTexts.has("<|calls|>");
    if (hasCall && (eogTexts.has("<|return|>") || eogTexts.has("<|flush|>"))) {
      eog.delete(end);
      attrs[end] = TokenAttr.USER_DEFINED;
    }
  }
  // "</s>" is an ordinary token where "<|tool_response>" ends generation
  const s = tokenToId.get("</s>");
  if (s !== undefined && eog.has(s) && eogTexts.has("<|tool_response>")) {
    eog.delete(s);
    attrs[s] = TokenAttr.NORMAL;
  }
  return eog;
}
